/* neurocore embedded inference, C ABI (for C and other languages' FFI).
 *
 *   char err[256];
 *   nc_session* s = nc_session_open("model.ncm", err, sizeof err);
 *   if (!s) { fprintf(stderr, "%s\n", err); return 1; }
 *   const float* in[1] = {pixels};  const int64_t shape[4] = {1, 1, 28, 28};
 *   const int64_t* shapes[1] = {shape};  const int ranks[1] = {4};
 *   float* out[1] = {logits};  const int64_t capacity[1] = {10};
 *   if (nc_session_run(s, in, shapes, ranks, out, capacity, err, sizeof err) != 0) ...
 *   nc_session_close(s);
 *
 * Functions returning int give 0 on success and -1 on error, with a message in err (when given).
 * A session may be run from many threads at once.
 */
#ifndef NEUROCORE_RUNTIME_H_
#define NEUROCORE_RUNTIME_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nc_session nc_session;

nc_session* nc_session_open(const char* path, char* err, size_t err_len);
void nc_session_close(nc_session* session);
int nc_session_num_inputs(const nc_session* session);
int nc_session_num_outputs(const nc_session* session);
/* Shape of output `index` for the given input shapes: writes up to max_rank dims, returns the rank
   (or -1 on error). */
int nc_session_output_shape(const nc_session* session, const int64_t* const* input_shapes, const int* input_ranks,
                            int index, int64_t* shape, int max_rank, char* err, size_t err_len);
/* Threads each run of this session uses (n <= 0: the process-wide setting). Returns 0 (-1: null session). */
int nc_session_set_num_threads(nc_session* session, int n);
/* Runs the model: outputs[i] has room for output_capacity[i] floats. */
int nc_session_run(const nc_session* session, const float* const* inputs, const int64_t* const* input_shapes,
                   const int* input_ranks, float* const* outputs, const int64_t* output_capacity, char* err,
                   size_t err_len);

#ifdef __cplusplus
}
#endif

#endif /* NEUROCORE_RUNTIME_H_ */
