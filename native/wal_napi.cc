// N-API surface of the wal module (native state part). Filled in by the wal issue.
#include "modules.h"

namespace rm {

void register_wal_exports(Napi::Env env, Napi::Object exports) {
  (void)env;
  (void)exports;
}

}  // namespace rm
