#pragma once

// A real Redis Cluster for tests: redis-server processes on loopback ports (3 masters, each
// with `replicas` replicas) joined with `redis-cli --cluster create`, stopped by PID when the
// object is destroyed (also when a test fails: each RedisServer stops its process). Header-only.

#include <sys/wait.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "support/redis_server.h"
#include "support/temp_dir.h"

namespace greylight::testing_support {

class LocalRedisCluster {
 public:
  static constexpr int kMasters = 3;
  static constexpr std::chrono::milliseconds kNodeTimeout{1000};
  static constexpr std::chrono::seconds kToolTimeout{60};

  // Starts 3 masters with `replicas` replicas each (a failover needs one; everything else
  // starts faster without).
  static Result<std::unique_ptr<LocalRedisCluster>> Start(int replicas = 1) {
    if (!FindProgram("redis-cli")) {
      return Status::NotFound(
          "redis-cli is not installed; the cluster tests need it: apt-get install redis-tools");
    }
    std::unique_ptr<LocalRedisCluster> cluster(new LocalRedisCluster());
    std::vector<std::string> create{"redis-cli", "--cluster", "create"};
    for (int i = 0; i < kMasters * (1 + replicas); ++i) {
      // The bus port is set explicitly: the default (port + 10000) may be past 65535.
      auto node =
          RedisServer::Start({"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                              "--cluster-node-timeout", std::to_string(kNodeTimeout.count()),
                              "--cluster-port", std::to_string(FreeLoopbackPort())});
      if (!node.ok()) return node.status();
      create.push_back("127.0.0.1:" + std::to_string((*node)->port()));
      cluster->nodes_.push_back(std::move(node.value()));
    }
    create.insert(create.end(), {"--cluster-replicas", std::to_string(replicas), "--cluster-yes"});
    if (Status s = cluster->RunCli(create); !s.ok()) return s;
    if (!WaitUntil([&] { return cluster->Healthy(); }, std::chrono::seconds(30))) {
      return Status::Unavailable("the cluster did not become healthy: " + cluster->CliLog());
    }
    return cluster;
  }

  // "127.0.0.1:P1,127.0.0.1:P2,..." of every node that still runs.
  std::string Seeds() const {
    std::string out;
    for (const auto& node : nodes_) {
      if (!node->running()) continue;
      if (!out.empty()) out += ",";
      out += "127.0.0.1:" + std::to_string(node->port());
    }
    return out;
  }

  // The running nodes whose ROLE is master.
  std::vector<RedisServer*> Masters() const {
    std::vector<RedisServer*> out;
    for (const auto& node : nodes_) {
      if (!node->running()) continue;
      auto role = node->Command({"ROLE"});
      if (role.ok() && !role->elements.empty() && role->elements[0].str == "master") {
        out.push_back(node.get());
      }
    }
    return out;
  }

  // True when every running node says cluster_state:ok and kMasters masters run.
  bool Healthy() const {
    for (const auto& node : nodes_) {
      if (!node->running()) continue;
      auto info = node->Command({"CLUSTER", "INFO"});
      if (!info.ok() || info->str.find("cluster_state:ok") == std::string::npos) return false;
    }
    return Masters().size() == kMasters;
  }

  // Runs redis-cli with `args` (args[0] is "redis-cli"), bounded by kToolTimeout.
  Status RunCli(std::vector<std::string> args) {
    auto program = FindProgram("redis-cli");
    std::string log = (dir_.path() / "redis-cli.log").string();
    auto pid = SpawnWithLog(*program, std::move(args), log);
    if (!pid.ok()) return pid.status();
    int status = 0;
    bool done = WaitUntil([&] { return ::waitpid(*pid, &status, WNOHANG) == *pid; },
                          std::chrono::duration_cast<std::chrono::milliseconds>(kToolTimeout));
    if (!done) {
      StopChild(*pid, std::chrono::milliseconds(1000));
      return Status::Unavailable("redis-cli timed out: " + CliLog());
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return Status::IoError("redis-cli failed: " + CliLog());
    }
    return Status::Ok();
  }
  std::string CliLog() const { return FileTail((dir_.path() / "redis-cli.log").string(), 3000); }

  const std::vector<std::unique_ptr<RedisServer>>& nodes() const { return nodes_; }

 private:
  LocalRedisCluster() = default;
  TempDir dir_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace greylight::testing_support
