#include "bench/process_cpu.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <iterator>
#include <string>

namespace greylight::bench {

std::optional<CpuTimes> ParseProcStat(std::string_view line, long ticks_per_second) {
  const size_t name_end = line.rfind(')');
  if (name_end == std::string_view::npos || ticks_per_second <= 0) return std::nullopt;
  // After the name: state (field 3) ... utime (field 14), stime (field 15).
  std::string_view rest = line.substr(name_end + 1);
  constexpr int kUtimeField = 14;
  int field = 2;
  unsigned long long values[2] = {0, 0};
  int found = 0;
  size_t i = 0;
  while (i < rest.size() && found < 2) {
    while (i < rest.size() && rest[i] == ' ') ++i;
    if (i == rest.size()) break;
    size_t end = rest.find(' ', i);
    if (end == std::string_view::npos) end = rest.size();
    ++field;
    if (field == kUtimeField || field == kUtimeField + 1) {
      auto [ptr, error] = std::from_chars(rest.data() + i, rest.data() + end, values[found]);
      if (error != std::errc() || ptr != rest.data() + end) return std::nullopt;
      ++found;
    }
    i = end;
  }
  if (found < 2) return std::nullopt;
  const double tick = 1.0 / static_cast<double>(ticks_per_second);
  return CpuTimes{static_cast<double>(values[0]) * tick, static_cast<double>(values[1]) * tick};
}

std::optional<CpuTimes> ReadProcessCpu(int pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string line((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (!file && !file.eof()) return std::nullopt;
  return ParseProcStat(line, sysconf(_SC_CLK_TCK));
}

std::vector<std::optional<CpuTimes>> SampleProcesses(const std::vector<int>& pids) {
  std::vector<std::optional<CpuTimes>> samples;
  samples.reserve(pids.size());
  for (int pid : pids) samples.push_back(ReadProcessCpu(pid));
  return samples;
}

}  // namespace greylight::bench
