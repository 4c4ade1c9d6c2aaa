#include "spf/spf_result.h"

namespace greylight::spf {

std::string_view SpfCodeName(SpfCode code) {
  switch (code) {
    case SpfCode::kNone:
      return "none";
    case SpfCode::kNeutral:
      return "neutral";
    case SpfCode::kPass:
      return "pass";
    case SpfCode::kFail:
      return "fail";
    case SpfCode::kSoftFail:
      return "softfail";
    case SpfCode::kTempError:
      return "temperror";
    case SpfCode::kPermError:
      return "permerror";
  }
  return "none";
}

bool UsablePass(const SpfResult& result) {
  return result.code == SpfCode::kPass && !result.broad && !result.domain.empty();
}

}  // namespace greylight::spf
