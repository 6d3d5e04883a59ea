/*===- synthrt.h - the C API of libsynthrt ---------------------------------===
 *
 * Load a compiled artifact (docs/artifact-format.md), run its entry points.
 * Every function returns a synth_status (SYNTH_OK is 0). Objects remember the
 * message of their last failure: synth_artifact_error / synth_session_error;
 * synth_last_error() has the last failure's message on the calling thread
 * (including failures that have no object, such as a NULL argument).
 * synth_artifact_load and synth_session_create hand back an object even when
 * they fail (unless out of memory), so its error can be read; free it with
 * the matching *_free in every case. No function aborts on bad input.
 *
 *===----------------------------------------------------------------------===*/

#ifndef SYNTHC_RUNTIME_SYNTHRT_H
#define SYNTHC_RUNTIME_SYNTHRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum synth_status {
  SYNTH_OK = 0,
  SYNTH_ERROR_INVALID_ARGUMENT = 1, /* bad input, manifest, file, shape */
  SYNTH_ERROR_NOT_FOUND = 2,        /* missing file, entry, input, output */
  SYNTH_ERROR_UNSUPPORTED = 3,      /* CPU features, target, version */
  SYNTH_ERROR_KERNEL = 4,           /* a kernel returned an error */
  SYNTH_ERROR_OUT_OF_MEMORY = 5,
  SYNTH_ERROR_INTERNAL = 6
} synth_status;

typedef enum synth_dtype {
  SYNTH_DTYPE_F32 = 0,
  SYNTH_DTYPE_I32 = 1,
  SYNTH_DTYPE_U8 = 2 /* boolean masks: 0 or 1 */
} synth_dtype;

typedef struct synth_artifact synth_artifact;
typedef struct synth_session synth_session;

/* The last failure's message on this thread ("" if none). */
const char *synth_last_error(void);
/* "ok", "invalid argument", ... */
const char *synth_status_name(synth_status status);
/* "F32", "I32", "U8". */
const char *synth_dtype_name(synth_dtype dtype);

/* Loads and validates the artifact directory `dir`. *out is set (also on
 * failure, unless out of memory) and must be freed with synth_artifact_free. */
synth_status synth_artifact_load(const char *dir, synth_artifact **out);
/* The message of the artifact's last failure ("" if none). */
const char *synth_artifact_error(const synth_artifact *artifact);
/* Sets the kernels' thread count (0: one per CPU). */
synth_status synth_artifact_set_num_threads(synth_artifact *artifact,
                                            int threads);
/* Entry points, by index. */
int synth_artifact_num_entries(const synth_artifact *artifact);
const char *synth_artifact_entry_name(const synth_artifact *artifact,
                                      int index);
/* Frees the artifact; its sessions stay usable until they are freed. */
void synth_artifact_free(synth_artifact *artifact);

/* A session running entry point `entry` (e.g. "forward") with the
 * artifact's weights. *out is set as for synth_artifact_load. */
synth_status synth_session_create(synth_artifact *artifact, const char *entry,
                                  synth_session **out);
const char *synth_session_error(const synth_session *session);

/* Inputs and outputs, by index: name, dtype, rank and shape (valid while the
 * session lives). Any of the out pointers may be NULL. */
int synth_session_num_inputs(const synth_session *session);
synth_status synth_session_input_info(const synth_session *session, int index,
                                      const char **name, synth_dtype *dtype,
                                      int *rank, const int64_t **shape);
int synth_session_num_outputs(const synth_session *session);
synth_status synth_session_output_info(const synth_session *session, int index,
                                       const char **name, synth_dtype *dtype,
                                       int *rank, const int64_t **shape);

/* Copies `bytes` bytes of row-major data into input `name`; dtype and shape
 * must match the plan exactly. */
synth_status synth_session_set_input(synth_session *session, const char *name,
                                     synth_dtype dtype, const int64_t *shape,
                                     int rank, const void *data, size_t bytes);
/* Runs the entry point (every input must be set). */
synth_status synth_session_run(synth_session *session);
/* Output `name` of the last run: a pointer into the session's memory, valid
 * until the next run or synth_session_free. Out pointers may be NULL. */
synth_status synth_session_get_output(synth_session *session, const char *name,
                                      synth_dtype *dtype, int *rank,
                                      const int64_t **shape, const void **data,
                                      size_t *bytes);
void synth_session_free(synth_session *session);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SYNTHC_RUNTIME_SYNTHRT_H */
