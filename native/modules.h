// Hooks for the modules that keep their own shared state in the segment (the buffer
// pool, the WAL). Each has its own N-API file that registers its exports; the
// functions there take a NativeSession object as their first argument.
#pragma once
#include <napi.h>

#include <cstdint>

namespace rm {

struct Segment;

// The segment and process slot behind a NativeSession object; nullptr (with a JS
// exception pending) if it is not a session or it is detached.
Segment* session_segment(Napi::Env env, Napi::Value session, uint32_t* slot);
// Coded errors, as the rest of the addon throws them.
Napi::Error module_error(Napi::Env env, const std::string& code, const std::string& msg, int err = 0);
// Argument errors with Node's codes: TypeError ERR_INVALID_ARG_TYPE, RangeError ERR_OUT_OF_RANGE.
Napi::Error module_type_error(Napi::Env env, const std::string& msg);
Napi::Error module_range_error(Napi::Env env, const std::string& msg);

void register_bufferpool_exports(Napi::Env env, Napi::Object exports);
void register_wal_exports(Napi::Env env, Napi::Object exports);
void register_datadir_exports(Napi::Env env, Napi::Object exports);
void register_file_sync_exports(Napi::Env env, Napi::Object exports);

}  // namespace rm
