#include "cli/exit_status.h"

namespace greylight::cli {

int ExitStatusFor(const Status& status) {
  switch (status.code()) {
    case Status::Code::kUsage:
      return kExitUsage;
    case Status::Code::kInvalidArgument:
      return kExitConfig;
    case Status::Code::kNotFound:
      return kExitAbsent;
    case Status::Code::kBusy:
      return kExitLocked;
    case Status::Code::kOk:
    case Status::Code::kIoError:
    case Status::Code::kCorruption:
    case Status::Code::kUnavailable:
      break;
  }
  return kExitUnavailable;
}

}  // namespace greylight::cli
