// N-API surface of the bufferpool module (native state part). Filled in by the bufferpool issue.
#include "modules.h"

namespace rm {

void register_bufferpool_exports(Napi::Env env, Napi::Object exports) {
  (void)env;
  (void)exports;
}

}  // namespace rm
