#pragma once

// How the greylight tool builds store keys: through engine::BuildRequestKeys, with the
// --lookup-by mode and public suffix list greylightd uses, so that `explain`, `delete`,
// `pass` and `report` find exactly the records a greylightd with the same options writes.

#include <memory>

#include "cli/policy_config.h"
#include "engine/request_keys.h"
#include "reputation/client_group.h"
#include "util/status.h"

namespace greylight::tools {

// The key scheme of a greylightd running with `config`. `psl` must outlive the scheme and
// is required by the domain modes (cli::LoadPsl).
engine::KeyScheme KeySchemeFor(const cli::PolicyConfig& config, const reputation::Psl* psl);

}  // namespace greylight::tools
