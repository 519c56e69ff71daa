/*
 * syncfs(2) on the libuv thread pool: makes every file written so far on the
 * file system holding `fd` durable in one journal commit, where one fsync
 * per file costs a commit each (the client's batched placement, see
 * packages/client/src/durable.ts). Linux only; elsewhere the call reports
 * ENOSYS and the caller falls back to fsync per file.
 *
 *   syncFs(fd, callback(errno))   errno 0 on success
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <node_api.h>
#include "smd_native.h"

typedef struct {
  int fd;
  int err;
  napi_async_work work;
  napi_ref callback;
} sync_job;

static void run(napi_env env, void *data) {
  (void)env;
  sync_job *j = data;
#ifdef __linux__
  j->err = syncfs(j->fd) == 0 ? 0 : errno;
#else
  j->err = ENOSYS;
#endif
}

static void done(napi_env env, napi_status status, void *data) {
  sync_job *j = data;
  napi_value cb, global, arg;
  if (napi_get_reference_value(env, j->callback, &cb) == napi_ok && napi_get_global(env, &global) == napi_ok &&
      napi_create_int32(env, status == napi_ok ? j->err : ECANCELED, &arg) == napi_ok) {
    napi_call_function(env, global, cb, 1, &arg, NULL);
  }
  napi_delete_reference(env, j->callback);
  napi_delete_async_work(env, j->work);
  free(j);
}

napi_value sync_fs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "syncFs(fd, callback)");
    return NULL;
  }
  sync_job *j = calloc(1, sizeof *j);
  if (j == NULL) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  if (napi_get_value_int32(env, argv[0], &j->fd) != napi_ok || napi_create_reference(env, argv[1], 1, &j->callback) != napi_ok ||
      napi_create_string_utf8(env, "smd-syncfs", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, run, done, j, &j->work) != napi_ok || napi_queue_async_work(env, j->work) != napi_ok) {
    if (j->work != NULL) napi_delete_async_work(env, j->work);
    if (j->callback != NULL) napi_delete_reference(env, j->callback);
    free(j);
    napi_throw_error(env, NULL, "syncFs: cannot queue the work");
    return NULL;
  }
  return NULL;
}
