/*
 * rename(2) that never replaces: renameat2(RENAME_NOREPLACE). The client
 * places a received message under its name without clobbering what a mail
 * program may have put there meanwhile; link + unlink does the same in two
 * calls (see packages/client/src/files.ts, placeNoClobber).
 *
 *   renameNoReplace(from: Buffer, to: Buffer) -> errno (0: renamed; EEXIST:
 *   something is there; EINVAL/ENOSYS: not supported here, use link)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <node_api.h>
#include "smd_native.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

/* A NUL-terminated copy of a Buffer argument (paths are bytes); NULL if not a Buffer without NUL. */
static char *path_arg(napi_env env, napi_value v) {
  void *data;
  size_t len;
  bool is;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is || napi_get_buffer_info(env, v, &data, &len) != napi_ok) return NULL;
  if (memchr(data, 0, len) != NULL) return NULL;
  char *s = malloc(len + 1);
  if (s == NULL) return NULL;
  memcpy(s, data, len);
  s[len] = 0;
  return s;
}

napi_value rename_no_replace(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "renameNoReplace(from, to)");
    return NULL;
  }
  char *from = path_arg(env, argv[0]), *to = path_arg(env, argv[1]);
  int err;
  if (from == NULL || to == NULL) err = EINVAL;
  else {
#if defined(__linux__) && defined(SYS_renameat2)
    err = syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0 ? 0 : errno;
#else
    err = ENOSYS;
#endif
  }
  free(from);
  free(to);
  if (napi_create_int32(env, err, &out) != napi_ok) return NULL;
  return out;
}
