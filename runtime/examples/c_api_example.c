/*===- c_api_example.c - run an artifact's "forward" from C ----------------===
 *
 * Usage: c_api_example ARTIFACT_DIR
 * Loads the artifact, feeds zeros to every input of "forward" (ones to U8
 * masks, so every position counts as a real token), runs it, and prints each
 * output's name, dtype and shape. Exit status 0 on success, 1 on any error.
 *
 *===----------------------------------------------------------------------===*/

#include "runtime/synthrt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t dtype_size(synth_dtype dtype) {
  return dtype == SYNTH_DTYPE_U8 ? 1 : 4;
}

static void print_shape(const int64_t *shape, int rank) {
  printf("[");
  for (int d = 0; d < rank; ++d) {
    printf(d ? ", %lld" : "%lld", (long long)shape[d]);
  }
  printf("]");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s ARTIFACT_DIR\n", argv[0]);
    return 2;
  }
  synth_artifact *artifact = NULL;
  synth_session *session = NULL;
  int exit_code = 1;
  if (synth_artifact_load(argv[1], &artifact) != SYNTH_OK) {
    fprintf(stderr, "error: %s\n", synth_artifact_error(artifact));
    goto done;
  }
  if (synth_session_create(artifact, "forward", &session) != SYNTH_OK) {
    fprintf(stderr, "error: %s\n", synth_session_error(session));
    goto done;
  }
  for (int i = 0; i < synth_session_num_inputs(session); ++i) {
    const char *name;
    synth_dtype dtype;
    int rank;
    const int64_t *shape;
    synth_session_input_info(session, i, &name, &dtype, &rank, &shape);
    size_t count = 1;
    for (int d = 0; d < rank; ++d) {
      count *= (size_t)shape[d];
    }
    size_t bytes = count * dtype_size(dtype);
    void *data = calloc(count ? count : 1, dtype_size(dtype));
    if (!data) {
      fprintf(stderr, "error: out of memory\n");
      goto done;
    }
    if (dtype == SYNTH_DTYPE_U8) {
      memset(data, 1, bytes);
    }
    synth_status status =
        synth_session_set_input(session, name, dtype, shape, rank, data, bytes);
    free(data);
    if (status != SYNTH_OK) {
      fprintf(stderr, "error: %s\n", synth_session_error(session));
      goto done;
    }
  }
  if (synth_session_run(session) != SYNTH_OK) {
    fprintf(stderr, "error: %s\n", synth_session_error(session));
    goto done;
  }
  for (int i = 0; i < synth_session_num_outputs(session); ++i) {
    const char *name;
    synth_session_output_info(session, i, &name, NULL, NULL, NULL);
    synth_dtype dtype;
    int rank;
    const int64_t *shape;
    const void *data;
    size_t bytes;
    if (synth_session_get_output(session, name, &dtype, &rank, &shape, &data,
                                 &bytes) != SYNTH_OK) {
      fprintf(stderr, "error: %s\n", synth_session_error(session));
      goto done;
    }
    printf("%s: %s ", name, synth_dtype_name(dtype));
    print_shape(shape, rank);
    printf(" (%zu bytes)\n", bytes);
  }
  exit_code = 0;
done:
  synth_session_free(session);
  synth_artifact_free(artifact);
  return exit_code;
}
