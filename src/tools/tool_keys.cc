#include "tools/tool_keys.h"

namespace greylight::tools {

engine::KeyScheme KeySchemeFor(const cli::PolicyConfig& config, const reputation::Psl* psl) {
  return engine::KeyScheme{config.engine.keys, config.engine.lookup_by, psl};
}

}  // namespace greylight::tools
