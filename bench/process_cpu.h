#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace greylight::bench {

// CPU time a process has used, all its threads together.
struct CpuTimes {
  double user_seconds = 0;
  double system_seconds = 0;
};

// The utime and stime fields of a /proc/PID/stat line, in seconds at `ticks_per_second`;
// nullopt if the line is not one. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')'.
std::optional<CpuTimes> ParseProcStat(std::string_view line, long ticks_per_second);

// The CPU times of process `pid` now, or nullopt if it cannot be read (it has exited).
std::optional<CpuTimes> ReadProcessCpu(int pid);

// One sample per pid, in order; a pid that cannot be read gives nullopt.
std::vector<std::optional<CpuTimes>> SampleProcesses(const std::vector<int>& pids);

}  // namespace greylight::bench
