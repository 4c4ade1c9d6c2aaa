// greylightd: the greylisting policy server. Start-up follows postgrey's order: options,
// whitelists, bind, drop privileges, daemonize, open the store, serve.

#include <signal.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <asio.hpp>
#include <cstdio>

#include "cli/daemon_config.h"
#include "cli/exit_status.h"
#include "engine/greylister.h"
#include "server/metrics_endpoint.h"
#include "server/process.h"
#include "server/server.h"
#include "store/open_store.h"
#include "util/clock.h"
#include "util/log.h"
#include "version.h"
#include "whitelist/whitelist.h"

namespace greylight {
namespace {

using cli::kExitConfig;
using cli::kExitUnavailable;

// Loads the whitelists and logs their warnings (missing files).
Result<std::shared_ptr<const whitelist::Whitelists>> LoadAndReportWhitelists(
    const cli::PolicyConfig& config) {
  auto loaded = cli::LoadWhitelists(config);
  if (loaded.ok()) {
    for (const std::string& warning : (*loaded)->warnings()) log::Warning("{}", warning);
  }
  return loaded;
}

int Fatal(int code, const std::string& message) {
  log::Flush();
  log::Error("ERROR: {}", message);
  return code;
}

int Run(const std::vector<std::string>& args) {
  auto config_or = cli::ParseDaemonConfig(args);
  if (!config_or.ok()) {
    std::fprintf(stderr, "ERROR: %s\n", config_or.status().message().c_str());
    return cli::ExitStatusFor(config_or.status());
  }
  cli::DaemonConfig& config = config_or.value();
  if (config.mode == cli::DaemonConfig::Mode::kHelp) {
    std::fputs(cli::DaemonUsage().c_str(), stdout);
    return 0;
  }
  if (config.mode == cli::DaemonConfig::Mode::kVersion) {
    std::printf("greylightd %s\n", kGreylightVersion);
    return 0;
  }
  config.policy.engine.version = kGreylightVersion;
  log::Configure(config.log_level, log::Sink::kStderr);

  auto descriptors = server::RaiseDescriptorLimit();
  if (!descriptors.ok()) {
    log::Warning("{}", descriptors.status().message());
  } else if (*descriptors < config.server.max_connections + server::kReservedDescriptors) {
    log::Warning(
        "the open-file limit ({}) is below --max-connections={} plus {}: connections "
        "past it fail at accept; raise LimitNOFILE or ulimit -n",
        *descriptors, config.server.max_connections, server::kReservedDescriptors);
  }

  auto whitelists_or = LoadAndReportWhitelists(config.policy);
  if (!whitelists_or.ok()) return Fatal(kExitConfig, whitelists_or.status().message());
  std::shared_ptr<const whitelist::Whitelists> whitelists = *whitelists_or;
  auto greytraps_or = cli::LoadGreytraps(config.policy);
  if (!greytraps_or.ok()) return Fatal(kExitConfig, greytraps_or.status().message());

  SystemClock clock;
  asio::io_context io(1);
  // Registered before anything is bound: a signal that arrives during start-up is queued
  // until the handlers below wait for it, instead of killing the process.
  asio::signal_set stop_signals(io, SIGTERM, SIGINT, SIGQUIT);
  asio::signal_set reload_signals(io, SIGHUP);
  server::Server server(io, config.server, clock);
  if (Status bound = server.Bind(); !bound.ok()) return Fatal(kExitUnavailable, bound.message());
  store::Store* metrics_store = nullptr;  // set once the store is open
  std::unique_ptr<server::MetricsEndpoint> metrics_endpoint;
  if (config.metrics_listen) {
    metrics_endpoint = std::make_unique<server::MetricsEndpoint>(
        io, *config.metrics_listen, [&server, &metrics_store] {
          return server.metrics().Render(metrics_store != nullptr ? metrics_store->Stats()
                                                                  : store::StoreStats{});
        });
    if (Status bound = metrics_endpoint->Bind(); !bound.ok()) {
      return Fatal(kExitUnavailable, bound.message());
    }
  }

  std::vector<std::string> socket_paths;
  for (const auto& address : config.server.listen) {
    if (address.kind == server::ListenAddress::Kind::kUnix) socket_paths.push_back(address.path);
  }
  if (Status dropped = server::DropPrivileges(config.user, config.group, socket_paths);
      !dropped.ok()) {
    return Fatal(kExitConfig, dropped.message());
  }
  if (config.daemonize) {
    log::Configure(config.log_level, log::Sink::kSyslog, "greylightd", config.syslog_facility);
    if (Status daemonized = server::Daemonize(); !daemonized.ok()) {
      return Fatal(kExitUnavailable, daemonized.message());
    }
  }
  if (!config.pidfile.empty()) {
    if (Status written = server::WritePidFile(config.pidfile); !written.ok()) {
      return Fatal(kExitUnavailable, written.message());
    }
  }

  ::umask(0077);
  auto store_or = store::OpenStore(config.policy.store, clock);
  if (!store_or.ok()) {
    return Fatal(cli::ExitStatusFor(store_or.status()), store_or.status().message());
  }
  std::unique_ptr<store::Store> store = std::move(store_or.value());
  metrics_store = store.get();
  auto psl_or = cli::LoadPsl(config.policy);
  if (!psl_or.ok()) return Fatal(kExitConfig, psl_or.status().message());
  std::unique_ptr<const reputation::Psl> psl = std::move(psl_or.value());
  if (psl) {
    log::Notice("grouping clients by {} (public suffix list: {})",
                reputation::LookupByName(config.policy.engine.lookup_by), psl->source());
  }
  engine::Greylister greylister(config.policy.engine, config.policy.timing, *store, psl.get());
  std::unique_ptr<reputation::DnsListChecker> dns_lists;
  if (!config.policy.dns.lists.empty()) {
    auto checker = reputation::DnsListChecker::Create(io, config.policy.dns, clock);
    if (!checker.ok()) return Fatal(kExitConfig, checker.status().message());
    dns_lists = std::move(checker.value());
    greylister.SetListLookup(
        [&dns_lists](const policy::IpAddress& client, reputation::ListCallback done) {
          dns_lists->Lookup(client, std::move(done));
        });
  }
  std::unique_ptr<reputation::SpfChecker> spf_checker;
  if (config.policy.engine.spf_keys) {
    auto checker = reputation::SpfChecker::Create(io, config.policy.spf, clock);
    if (!checker.ok()) return Fatal(kExitConfig, checker.status().message());
    spf_checker = std::move(checker.value());
    greylister.SetSpfLookup([&spf_checker](spf::SpfRequest request, reputation::SpfCallback done) {
      spf_checker->Check(std::move(request), std::move(done));
    });
    log::Notice("SPF keys: a client that passes SPF narrowly is keyed by the domain");
  }

  greylister.SetWhitelists(whitelists);
  greylister.SetGreytraps(*greytraps_or);
  if (*greytraps_or) {
    log::Notice("greytraps: {} addresses, clients that write to one are trapped for {}s",
                (*greytraps_or)->entry_count(), config.policy.timing.trap_ttl.count());
  }
  server.metrics().WhitelistsLoaded(true, whitelists->client_entry_count(),
                                    whitelists->recipient_entry_count(), clock.Now());

  // Set by the stop handler. Periodic handlers check it rather than rely on cancel(): a
  // timer that has already expired has its handler queued, and cancel() cannot stop it
  // from re-arming, which would keep the event loop (and the process) alive.
  bool stopping = false;
  asio::steady_timer log_flush_timer(io);
  std::function<void()> schedule_log_flush = [&] {
    log_flush_timer.expires_after(log::kFlushInterval);
    log_flush_timer.async_wait([&](std::error_code ec) {
      log::Flush();
      if (!ec && !stopping) schedule_log_flush();
    });
  };
  schedule_log_flush();

  asio::steady_timer summary_timer(io);
  std::function<void()> schedule_summary = [&] {
    if (config.summary_interval.count() == 0) return;
    summary_timer.expires_after(config.summary_interval);
    summary_timer.async_wait([&](std::error_code ec) {
      if (ec || stopping) return;
      log::Notice("{}", server.metrics().Summary());
      schedule_summary();
    });
  };
  schedule_summary();

  stop_signals.async_wait([&](std::error_code ec, int) {
    if (ec) return;
    stopping = true;
    log::Notice("Server closing!");
    sd_notify(0, "STOPPING=1");
    reload_signals.cancel();
    if (metrics_endpoint) metrics_endpoint->Stop();
    summary_timer.cancel();
    log_flush_timer.cancel();
    server.Shutdown();
  });
  std::function<void()> wait_reload = [&] {
    reload_signals.async_wait([&](std::error_code ec, int) {
      if (ec || stopping) return;
      log::Warning("HUP received: reloading whitelists...");
      sd_notify(0, "RELOADING=1");
      // Built completely before the swap: a file with an error keeps the lists in force.
      auto reloaded = LoadAndReportWhitelists(config.policy);
      if (reloaded.ok()) {
        greylister.SetWhitelists(*reloaded);
        server.metrics().WhitelistsLoaded(true, (*reloaded)->client_entry_count(),
                                          (*reloaded)->recipient_entry_count(), clock.Now());
      } else {
        log::Error("whitelists not reloaded, keeping the previous lists: {}",
                   reloaded.status().message());
        server.metrics().WhitelistsLoaded(false, 0, 0, clock.Now());
      }
      if (!config.policy.greytrap_recipients.empty()) {
        auto greytraps = cli::LoadGreytraps(config.policy);
        if (greytraps.ok()) {
          greylister.SetGreytraps(*greytraps);
          log::Notice("greytraps reloaded: {} addresses", (*greytraps)->entry_count());
        } else {
          log::Error("greytraps not reloaded, keeping the previous list: {}",
                     greytraps.status().message());
        }
      }
      sd_notify(0, "READY=1");
      wait_reload();
    });
  };
  wait_reload();

  server.Start(greylister);
  if (metrics_endpoint) metrics_endpoint->Start();
  log::Notice("greylightd {} starting! pid({})", kGreylightVersion, static_cast<int>(::getpid()));
  // systemd Type=notify: ready once the listeners are bound and the store is open.
  sd_notify(0, "READY=1");
  io.run();

  store.reset();  // commits what is pending
  log::Flush();
  if (!config.pidfile.empty()) ::unlink(config.pidfile.c_str());
  return 0;
}

}  // namespace
}  // namespace greylight

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  return greylight::Run(args);
}
