// The bytes behind any JavaScript ArrayBufferView a user can pass: every TypedArray kind
// and DataView, over an ArrayBuffer, a resizable one, a SharedArrayBuffer (growable or
// not), a Buffer pool slice or the arena. Plain Node-API calls only: node-addon-api's
// ArrayBuffer wrapper fails on a SharedArrayBuffer and its error path then aborts the
// process (FATAL ERROR in napi_throw), which is what a worker-thread user passing
// shared memory used to get.
#pragma once
#include <node_api.h>

#include <cstddef>
#include <cstdint>

namespace rm {

struct JsBytes {
  uint8_t* data = nullptr;
  size_t length = 0;     // 0 for a detached buffer and for a view out of bounds of a shrunk one
  bool detached = false;
};

// False (with `*why` set, no JS exception pending) if `v` is not an ArrayBufferView.
bool js_bytes(napi_env env, napi_value v, JsBytes* out, const char** why);

}  // namespace rm
