// Node-API glue of the data-directory lock (mechanism: datadir_lock.h).
#include <napi.h>

#include <cerrno>
#include <cstring>

#include "datadir_lock.h"
#include "modules.h"
#include "napi_args.h"

namespace rm {

namespace {

// info[0]: the data directory; the path of its lock file.
std::string lock_path_of(const Napi::CallbackInfo& info, bool* ok) {
  *ok = false;
  std::string dir;
  if (!arg_string(info, 0, "dataDir", &dir)) return "";
  if (dir.empty() || dir.find('\0') != std::string::npos) {
    module_type_error(info.Env(), "dataDir must be a non-empty path without NUL").ThrowAsJavaScriptException();
    return "";
  }
  *ok = true;
  return dir + "/" + kDataDirLockFile;
}

// The errnos open/fcntl/ftruncate/pwrite can give here, by name (as `code`).
std::string errno_name(int e) {
  switch (e) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ELOOP: return "ELOOP";
    case EROFS: return "EROFS";
    case ENOLCK: return "ENOLCK";
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case EIO: return "EIO";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    default: return "E" + std::to_string(e);
  }
}

Napi::Error errno_error(Napi::Env env, int rc, const std::string& what) {
  int e = -rc;
  return module_error(env, errno_name(e), what + ": " + strerror(e), e);
}

// dataDirLock(dataDir, content) -> { status, fd?, previous }
Napi::Value Lock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ok;
  std::string path = lock_path_of(info, &ok);
  if (!ok) return env.Undefined();
  RM_ARG_STRING(content, 1, "content");
  int fd = -1;
  std::string previous;
  int rc = datadir_lock(path.c_str(), content, &fd, &previous);
  if (rc < 0) {
    errno_error(env, rc, "cannot lock '" + path + "'").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", Napi::Number::New(env, rc));
  if (rc == kDataDirLocked) o.Set("fd", Napi::Number::New(env, fd));
  o.Set("previous", Napi::String::New(env, previous));
  o.Set("path", Napi::String::New(env, path));
  return o;
}

// dataDirUnlock(fd, clear)
Napi::Value Unlock(const Napi::CallbackInfo& info) {
  if (info[0].IsNumber()) datadir_unlock(info[0].As<Napi::Number>().Int32Value(), info[1].ToBoolean().Value());
  return info.Env().Undefined();
}

// dataDirShare(dataDir) -> { fd, content }
Napi::Value Share(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ok;
  std::string path = lock_path_of(info, &ok);
  if (!ok) return env.Undefined();
  std::string content;
  int fd = datadir_share(path.c_str(), &content);
  if (fd < 0) {
    errno_error(env, fd, "cannot take a shared lock on '" + path + "'").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", Napi::Number::New(env, fd));
  o.Set("content", Napi::String::New(env, content));
  return o;
}

}  // namespace

void register_datadir_exports(Napi::Env env, Napi::Object exports) {
  exports.Set("dataDirLock", Napi::Function::New(env, Lock));
  exports.Set("dataDirUnlock", Napi::Function::New(env, Unlock));
  exports.Set("dataDirShare", Napi::Function::New(env, Share));
}

}  // namespace rm
