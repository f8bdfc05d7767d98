// Argument checks shared by the Node-API glue files. Each check throws the JS error Node
// itself would (TypeError ERR_INVALID_ARG_TYPE, RangeError ERR_OUT_OF_RANGE) and returns
// false; the RM_ARG_* forms declare the variable and return undefined from the calling
// function with that exception pending, so a glue function reads as its argument list:
//
//   RM_ARG_SEGMENT(seg);                       // info[0]: an attached NativeSession
//   RM_ARG_UINT32(id, 1, 0, n - 1);            // info[1]: an integer in [0, n - 1]
//
// Every macro expects `info` (the Napi::CallbackInfo) in scope.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

#include "modules.h"

namespace rm {

// The largest integer a JS number holds exactly (Number.MAX_SAFE_INTEGER).
constexpr double kMaxSafeInteger = 9007199254740991.0;

// info[i] is a whole number in [lo, hi].
bool arg_integer(const Napi::CallbackInfo& info, size_t i, double lo, double hi, double* out);
// info[i] if it is a number, else `fallback` (an optional argument the caller left out).
double arg_number_or(const Napi::CallbackInfo& info, size_t i, double fallback);
// info[i] is a string (TypeError "<what> must be a string" otherwise).
bool arg_string(const Napi::CallbackInfo& info, size_t i, const char* what, std::string* out);
// info[i] as JS truthiness (an absent argument is false).
inline bool arg_flag(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i && info[i].ToBoolean(); }

}  // namespace rm

#define RM_ARG_INTEGER_AS_(type, var, i, lo, hi)                                     \
  type var;                                                                          \
  do {                                                                               \
    double var##_number_;                                                            \
    if (!::rm::arg_integer(info, (i), (lo), (hi), &var##_number_)) return info.Env().Undefined(); \
    var = (type)var##_number_;                                                       \
  } while (0)

// Whole numbers in [lo, hi], as the named type.
#define RM_ARG_NUMBER(var, i, lo, hi) RM_ARG_INTEGER_AS_(double, var, i, lo, hi)
#define RM_ARG_UINT32(var, i, lo, hi) RM_ARG_INTEGER_AS_(uint32_t, var, i, lo, hi)
#define RM_ARG_INT32(var, i, lo, hi) RM_ARG_INTEGER_AS_(int32_t, var, i, lo, hi)
#define RM_ARG_UINT64(var, i, lo, hi) RM_ARG_INTEGER_AS_(uint64_t, var, i, lo, hi)

// A string argument; `what` names it in the error.
#define RM_ARG_STRING(var, i, what) \
  std::string var;                  \
  if (!::rm::arg_string(info, (i), (what), &var)) return info.Env().Undefined()

// info[0]: the segment behind an attached NativeSession (ERR_RINGMASTER_DETACHED otherwise).
#define RM_ARG_SEGMENT(seg)                                              \
  ::rm::Segment* seg = ::rm::session_segment(info.Env(), info[0], nullptr); \
  if (!seg) return info.Env().Undefined()
// The same, with the session's process slot.
#define RM_ARG_SEGMENT_SLOT(seg, slot)                                   \
  uint32_t slot = 0;                                                     \
  ::rm::Segment* seg = ::rm::session_segment(info.Env(), info[0], &slot); \
  if (!seg) return info.Env().Undefined()
