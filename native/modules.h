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
// A module function bound to one session (the session is checked once, here): called
// without the session argument, it finds its session through bound_session_segment,
// with no per-call type check or unwrap (two private-field lookups, a third of a
// microsecond per call). For the hot paths that call into native several times per op.
using SessionBoundFn = Napi::Value (*)(const Napi::CallbackInfo& info);
Napi::Value session_bound_function(Napi::Env env, Napi::Value session, const char* name, SessionBoundFn fn);
// In a function made by session_bound_function: the segment and slot behind its session;
// nullptr (ERR_RINGMASTER_DETACHED pending) once the session is closed or released.
Segment* bound_session_segment(const Napi::CallbackInfo& info, uint32_t* slot);
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
