/* The functions of the addon (registered in addon.c). */
#ifndef SMD_NATIVE_H
#define SMD_NATIVE_H
#include <node_api.h>

/* dirstat.c: directory listing + stat, and the folder queue. */
napi_value list_dir_stat(napi_env env, napi_callback_info info);
napi_value start_folder_queue(napi_env env, napi_callback_info info);
napi_value take_folder(napi_env env, napi_callback_info info);
napi_value close_folder_queue(napi_env env, napi_callback_info info);

/* dbparse.c: the canonical lines of a db-file. */
napi_value parse_db_lines(napi_env env, napi_callback_info info);

/* syncfs.c: syncfs(2) on the thread pool. */
napi_value sync_fs(napi_env env, napi_callback_info info);

/* rename.c: renameat2(RENAME_NOREPLACE). */
napi_value rename_no_replace(napi_env env, napi_callback_info info);

#endif
