#include "tools/tool_store.h"

#include <fmt/format.h>

#include <chrono>

#include "store/open_store.h"

namespace greylight::tools {
namespace {

store::StoreConfig ToolStoreConfig(std::string_view uri, const cli::PolicyConfig& config) {
  store::StoreConfig store = config.store;
  store.uri = std::string(uri);
  store.dbdir = config.dbdir;
  store.timing = config.timing;
  // Every Put/Delete is committed durably before it returns; no background thread.
  store.commit_interval = std::chrono::milliseconds(0);
  store.background_expiry = false;
  store.exclusive = false;  // greylightd may hold the dbdir lock: work beside it
  store.hand_new_files_to_dir_owner = true;
  return store;
}

}  // namespace

std::string DefaultStoreUri(const cli::PolicyConfig& config) {
  return std::string(store::StoreConfig::kDefaultUri) + config.dbdir.string();
}

Result<std::unique_ptr<store::Store>> OpenToolStore(std::string_view uri,
                                                    const cli::PolicyConfig& config,
                                                    const Clock& clock, StoreUse use) {
  store::StoreConfig store = ToolStoreConfig(uri, config);
  store.must_exist = use == StoreUse::kExisting;
  auto opened = store::OpenStore(store, clock);
  if (!opened.ok() && opened.status().code() == Status::Code::kUnavailable) {
    return Status::Unavailable(fmt::format("store {}: {}", uri, opened.status().message()));
  }
  if (!opened.ok()) return opened.status();
  // A network store connects in the background; a tool wants an unreachable server
  // reported now, not as empty results.
  if (auto probe = (*opened)->Get(store::Table::kClients, "greylight-tool-probe"); !probe.ok()) {
    return Status::Unavailable(fmt::format("store {}: {}", uri, probe.status().message()));
  }
  return opened;
}

std::string StoreIdentity(std::string_view uri, const cli::PolicyConfig& config) {
  return store::StoreIdentity(ToolStoreConfig(uri, config));
}

}  // namespace greylight::tools
