//===- CApiTest.cpp - the C API (synthrt.h) -------------------------------===//

#include "runtime/synthrt.h"

#include "TestUtil.h"

#include "gtest/gtest.h"

#include <cmath>
#include <string>
#include <vector>

namespace {

TEST(CApi, LoadRunAndReadOutput) {
  synth_artifact *artifact = nullptr;
  ASSERT_EQ(synth_artifact_load(synth::test::kToyArtifact.c_str(), &artifact),
            SYNTH_OK)
      << synth_artifact_error(artifact);
  EXPECT_EQ(synth_artifact_num_entries(artifact), 3);
  EXPECT_STREQ(synth_artifact_entry_name(artifact, 0), "forward");
  EXPECT_EQ(synth_artifact_entry_name(artifact, 3), nullptr);
  EXPECT_EQ(synth_artifact_set_num_threads(artifact, 2), SYNTH_OK);

  synth_session *session = nullptr;
  ASSERT_EQ(synth_session_create(artifact, "forward", &session), SYNTH_OK)
      << synth_session_error(session);
  // The session keeps the artifact alive.
  synth_artifact_free(artifact);

  ASSERT_EQ(synth_session_num_inputs(session), 1);
  const char *name;
  synth_dtype dtype;
  int rank;
  const int64_t *shape;
  ASSERT_EQ(synth_session_input_info(session, 0, &name, &dtype, &rank, &shape),
            SYNTH_OK);
  EXPECT_STREQ(name, "tokens");
  EXPECT_EQ(dtype, SYNTH_DTYPE_I32);
  ASSERT_EQ(rank, 2);
  EXPECT_EQ(shape[0], 2);
  EXPECT_EQ(shape[1], 8);
  EXPECT_EQ(synth_session_input_info(session, 1, &name, &dtype, &rank, &shape),
            SYNTH_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(synth_last_error(), "input index 1 out of range (entry has 1)");

  std::vector<int32_t> tokens(16, 65);
  ASSERT_EQ(synth_session_set_input(session, "tokens", SYNTH_DTYPE_I32, shape,
                                    rank, tokens.data(), 64),
            SYNTH_OK);
  ASSERT_EQ(synth_session_run(session), SYNTH_OK)
      << synth_session_error(session);
  const void *data;
  size_t bytes;
  ASSERT_EQ(synth_session_get_output(session, "logits", &dtype, &rank, &shape,
                                     &data, &bytes),
            SYNTH_OK);
  EXPECT_EQ(dtype, SYNTH_DTYPE_F32);
  EXPECT_EQ(rank, 3);
  EXPECT_EQ(shape[2], 256);
  EXPECT_EQ(bytes, 2u * 8 * 256 * 4);
  EXPECT_FALSE(std::isnan(static_cast<const float *>(data)[0]));
  synth_session_free(session);
}

TEST(CApi, ErrorsAreCodesAndMessages) {
  synth_artifact *artifact = nullptr;
  EXPECT_EQ(synth_artifact_load("/nonexistent.synth", &artifact),
            SYNTH_ERROR_NOT_FOUND);
  ASSERT_NE(artifact, nullptr);
  EXPECT_STREQ(synth_artifact_error(artifact),
               "/nonexistent.synth: cannot open the artifact directory: No "
               "such file or directory");
  EXPECT_STREQ(synth_last_error(), synth_artifact_error(artifact));
  synth_session *session = nullptr;
  EXPECT_EQ(synth_session_create(artifact, "forward", &session),
            SYNTH_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(synth_session_error(session),
               "synth_session_create: no loaded artifact");
  synth_session_free(session);
  synth_artifact_free(artifact);

  EXPECT_EQ(synth_artifact_load(nullptr, nullptr),
            SYNTH_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(synth_last_error(), "synth_artifact_load: out is NULL");
  EXPECT_EQ(synth_session_run(nullptr), SYNTH_ERROR_INVALID_ARGUMENT);
  synth_artifact_free(nullptr);
  synth_session_free(nullptr);

  ASSERT_EQ(synth_artifact_load(synth::test::kToyArtifact.c_str(), &artifact),
            SYNTH_OK);
  EXPECT_EQ(synth_session_create(artifact, "nope", &session),
            SYNTH_ERROR_NOT_FOUND);
  synth_session_free(session);
  ASSERT_EQ(synth_session_create(artifact, "forward", &session), SYNTH_OK);
  int64_t shape[2] = {2, 8};
  float zeros[16] = {};
  EXPECT_EQ(synth_session_set_input(session, "tokens", SYNTH_DTYPE_F32, shape,
                                    2, zeros, sizeof(zeros)),
            SYNTH_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(synth_session_error(session),
               "input \"tokens\" of entry forward is I32 [2, 8], got F32 [2, "
               "8]");
  EXPECT_EQ(synth_session_set_input(session, "tokens", (synth_dtype)42, shape,
                                    2, zeros, sizeof(zeros)),
            SYNTH_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(synth_session_run(session), SYNTH_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(synth_session_error(session),
               "input \"tokens\" of entry forward was not set");
  EXPECT_EQ(synth_session_get_output(session, "logits", nullptr, nullptr,
                                     nullptr, nullptr, nullptr),
            SYNTH_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(synth_status_name(SYNTH_ERROR_KERNEL), "kernel error");
  synth_session_free(session);
  synth_artifact_free(artifact);
}

} // namespace
