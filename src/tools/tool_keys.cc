#include "tools/tool_keys.h"

#include <fmt/format.h>

namespace greylight::tools {

Result<std::unique_ptr<const reputation::Psl>> LoadPslFor(const cli::PolicyConfig& config) {
  if (!reputation::GroupsByDomain(config.engine.lookup_by)) {
    return std::unique_ptr<const reputation::Psl>();
  }
  auto loaded = reputation::Psl::LoadSystem();
  if (!loaded.ok()) {
    return Status::InvalidArgument(
        fmt::format("--lookup-by={}: can't load the public suffix list: {}",
                    reputation::LookupByName(config.engine.lookup_by), loaded.status().message()));
  }
  return std::move(loaded.value());
}

engine::KeyScheme KeySchemeFor(const cli::PolicyConfig& config, const reputation::Psl* psl) {
  return engine::KeyScheme{config.engine.keys, config.engine.lookup_by, psl};
}

}  // namespace greylight::tools
