/* smd's optional native helpers: the scan (dirstat.c, dbparse.c) batched durability (syncfs.c) and no-clobber renames (rename.c). */
#include <stddef.h>
#include <node_api.h>
#include "smd_native.h"

NAPI_MODULE_INIT() {
  static const struct { const char *name; napi_callback cb; } fns[] = {
    { "listDirStat", list_dir_stat },
    { "startFolderQueue", start_folder_queue },
    { "takeFolder", take_folder },
    { "closeFolderQueue", close_folder_queue },
    { "parseDbLines", parse_db_lines },
    { "syncFs", sync_fs },
    { "renameNoReplace", rename_no_replace },
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, fns[i].name, fn) != napi_ok) return NULL;
  }
  return exports;
}
