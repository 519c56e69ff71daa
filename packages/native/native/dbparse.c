/*
 * parseDbLines(buf, start, end, hashes, lineStart, at, base) -> [count, stop, names]
 *
 * Decodes the canonical db-file lines at the start of buf[start, end), the
 * lines smd itself writes: "<40 lower-case hex> <40 lower-case hex> <name>\n"
 * with a non-empty name. Line k becomes entry at+k: its header and body
 * SHA-1s as 40 bytes at hashes[40 (at+k)], its file offset (base + its index
 * in buf) at lineStart[at+k].
 *
 * It stops at the first line that has no '\n' before end, that is not
 * canonical, or that would not fit hashes or lineStart. The caller reads that
 * line in JavaScript, which is the authority on everything else (upper-case
 * hex is accepted there, anything malformed is an error naming the line).
 *
 * count: lines decoded; stop: index in buf of the first line not decoded;
 * names: the names of the decoded lines joined by '\n' (no name holds one).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "smd_native.h"

/*
 * Lower-case hex digit -> 1 + its value, anything else -> 0. A constant, not
 * filled at run time: the addon may be loaded by several threads.
 */
static const unsigned char hex_plus1[256] = {
  ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
  ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

/* Decodes 20 bytes from 40 hex digits; 0 if they were all lower-case hex. */
static int decode20(const unsigned char *src, unsigned char *dst) {
  int bad = 0;
  for (int k = 0; k < 20; k++) {
    int hi = hex_plus1[src[2 * k]] - 1, lo = hex_plus1[src[2 * k + 1]] - 1;
    bad |= hi | lo;
    dst[k] = (unsigned char)((hi << 4) | lo);
  }
  return bad < 0;
}

static int typed_array(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *length) {
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, length, data, &ab, &offset) != napi_ok) return -1;
  return type == want ? 0 : -1;
}

napi_value parse_db_lines(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  unsigned char *buf, *hashes;
  double *line_start, base;
  size_t buf_len, hashes_len, lines_len;
  int64_t start, end, at;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 7
      || typed_array(env, argv[0], napi_uint8_array, (void **)&buf, &buf_len) != 0
      || napi_get_value_int64(env, argv[1], &start) != napi_ok
      || napi_get_value_int64(env, argv[2], &end) != napi_ok
      || typed_array(env, argv[3], napi_uint8_array, (void **)&hashes, &hashes_len) != 0
      || typed_array(env, argv[4], napi_float64_array, (void **)&line_start, &lines_len) != 0
      || napi_get_value_int64(env, argv[5], &at) != napi_ok
      || napi_get_value_double(env, argv[6], &base) != napi_ok
      || start < 0 || end < start || (size_t)end > buf_len || at < 0) {
    napi_throw_type_error(env, NULL, "parseDbLines(buf, start, end, hashes, lineStart, at, base)");
    return NULL;
  }
  size_t fit_hashes = hashes_len / 40 > (size_t)at ? hashes_len / 40 - (size_t)at : 0;
  size_t fit_lines = lines_len > (size_t)at ? lines_len - (size_t)at : 0;
  size_t max = fit_hashes < fit_lines ? fit_hashes : fit_lines;

  /* The names take at most the bytes of their lines. */
  char *names = malloc((size_t)(end - start) + 1);
  if (names == NULL) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  size_t names_len = 0, count = 0;
  size_t s = (size_t)start;
  while (count < max) {
    const unsigned char *nl = memchr(buf + s, '\n', (size_t)end - s);
    if (nl == NULL) break;
    size_t e = (size_t)(nl - buf);
    if (e - s < 83 || buf[s + 40] != ' ' || buf[s + 81] != ' ') break;
    unsigned char *h = hashes + 40 * ((size_t)at + count);
    if (decode20(buf + s, h) || decode20(buf + s + 41, h + 20)) break;
    line_start[(size_t)at + count] = base + (double)s;
    if (count > 0) names[names_len++] = '\n';
    memcpy(names + names_len, buf + s + 82, e - s - 82);
    names_len += e - s - 82;
    count++;
    s = e + 1;
  }
  napi_value out, v;
  napi_status st = napi_create_array_with_length(env, 3, &out);
  if (st == napi_ok) st = napi_create_uint32(env, (uint32_t)count, &v);
  if (st == napi_ok) st = napi_set_element(env, out, 0, v);
  if (st == napi_ok) st = napi_create_int64(env, (int64_t)s, &v);
  if (st == napi_ok) st = napi_set_element(env, out, 1, v);
  if (st == napi_ok) st = napi_create_string_latin1(env, names, names_len, &v);
  if (st == napi_ok) st = napi_set_element(env, out, 2, v);
  free(names);
  if (st != napi_ok) { napi_throw_error(env, NULL, "parseDbLines: cannot build the result"); return NULL; }
  return out;
}
