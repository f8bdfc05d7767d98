// See js_bytes.h.
#include "js_bytes.h"

namespace rm {

namespace {

size_t element_size(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array: return 1;
    case napi_int16_array:
    case napi_uint16_array: return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array: return 8;
    default: return 0;  // a kind this Node-API version does not know (e.g. Float16Array): refused
  }
}

}  // namespace

bool js_bytes(napi_env env, napi_value v, JsBytes* out, const char** why) {
  *out = JsBytes{};
  bool is = false;
  void* data = nullptr;
  napi_value ab = nullptr;
  size_t offset = 0;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length = 0;
    if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok) {
      *why = "cannot read the typed array";
      return false;
    }
    size_t es = element_size(type);
    if (es == 0) {
      *why = "unsupported typed array kind";
      return false;
    }
    out->length = length * es;
  } else if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    size_t length = 0;
    if (napi_get_dataview_info(env, v, &length, &data, &ab, &offset) != napi_ok) {
      *why = "cannot read the DataView";
      return false;
    }
    out->length = length;
  } else {
    *why = "a buffer must be a TypedArray, a DataView or a Buffer";
    return false;
  }
  bool detached = false;
  // False for a SharedArrayBuffer (never detached); no exception either way.
  if (ab != nullptr && napi_is_detached_arraybuffer(env, ab, &detached) == napi_ok && detached) {
    out->detached = true;
    out->length = 0;
    data = nullptr;
  }
  if (data == nullptr) out->length = 0;
  out->data = static_cast<uint8_t*>(data);
  return true;
}

}  // namespace rm
