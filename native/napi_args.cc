// Argument checks shared by the Node-API glue (napi_args.h).
#include "napi_args.h"

#include <cmath>

namespace rm {

bool arg_integer(const Napi::CallbackInfo& info, size_t i, double lo, double hi, double* out) {
  if (!info[i].IsNumber()) {
    module_type_error(info.Env(), "expected a number").ThrowAsJavaScriptException();
    return false;
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != std::floor(d)) {
    module_range_error(info.Env(), "number out of range").ThrowAsJavaScriptException();
    return false;
  }
  *out = d;
  return true;
}

bool arg_string(const Napi::CallbackInfo& info, size_t i, const char* what, std::string* out) {
  if (!info[i].IsString()) {
    module_type_error(info.Env(), std::string(what) + " must be a string").ThrowAsJavaScriptException();
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

double arg_number_or(const Napi::CallbackInfo& info, size_t i, double fallback) {
  return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : fallback;
}

}  // namespace rm
