// The openspf.org RFC 7208 test suite (release 2014.04, BSD licence beside it in
// ../shared/data/spf/), run case by case against a resolver that serves each scenario's
// zonedata. The resolver copies the suite drivers' conventions: a name's SPF-type records
// are served as TXT when it has no TXT entry, "TXT: NONE" is a name without TXT records,
// an entry "TIMEOUT" fails every query for a type not listed before it, CNAMEs are
// followed (a loop is a DNS error), names outside the zone do not exist.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "spf/spf_check.h"

#ifndef GREYLIGHT_SPF_SUITE_PATH
#define GREYLIGHT_SPF_SUITE_PATH ""
#endif

namespace greylight::spf {
namespace {

constexpr int kMaxCnameChain = 8;
constexpr int kMaxRounds = 200;  // far more question rounds than the RFC's limits allow

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

std::string SuitePath() {
  if (const char* path = std::getenv("GREYLIGHT_SPF_SUITE")) return path;
  return GREYLIGHT_SPF_SUITE_PATH;
}

class ZoneResolver {
 public:
  explicit ZoneResolver(const YAML::Node& zonedata) {
    for (const auto& entry : zonedata) {
      const std::string name = Lower(entry.first.as<std::string>());
      std::vector<Entry>& records = zone_[name];
      std::vector<Entry> spf_as_txt;
      bool has_txt = false;
      for (const YAML::Node& item : entry.second) {
        if (item.IsScalar()) {  // "TIMEOUT"
          records.push_back({"TIMEOUT", ""});
          continue;
        }
        for (const auto& typed : item) {
          const std::string type = typed.first.as<std::string>();
          const YAML::Node& value = typed.second;
          std::string text;
          if (type == "TXT" || type == "SPF") {
            if (value.IsSequence()) {
              for (const YAML::Node& part : value) text += part.as<std::string>();
            } else {
              text = value.as<std::string>();
            }
            if (type == "TXT") has_txt = true;
            if (type == "TXT" && text == "NONE") continue;
            if (type == "SPF") spf_as_txt.push_back({"TXT", text});
          } else if (type == "MX") {
            text = value[1].as<std::string>();
          } else {
            text = value.as<std::string>();
          }
          records.push_back({type, text});
        }
      }
      if (!has_txt) records.insert(records.end(), spf_as_txt.begin(), spf_as_txt.end());
    }
  }

  DnsAnswer Resolve(const DnsQuestion& question, int chain = 0) const {
    DnsAnswer answer;
    auto it = zone_.find(Lower(question.name));
    if (it == zone_.end()) {
      answer.status = DnsAnswer::Status::kNxDomain;
      return answer;
    }
    const std::string type = TypeName(question.type);
    bool seen = false;
    std::string cname;
    for (const Entry& entry : it->second) {
      if (entry.type == "TIMEOUT") {
        if (!seen) return DnsAnswer{};  // kError
        break;
      }
      if (entry.type == "CNAME") cname = Lower(entry.value);
      if (entry.type != type) continue;
      seen = true;
      if (question.type == RecordType::kA || question.type == RecordType::kAaaa) {
        auto address = policy::IpAddress::Parse(entry.value);
        if (address) answer.addresses.push_back(*address);
      } else {
        answer.texts.push_back(entry.value);
      }
    }
    if (!seen && !cname.empty()) {
      if (chain >= kMaxCnameChain) return DnsAnswer{};  // a loop: kError
      return Resolve({cname, question.type}, chain + 1);
    }
    answer.status = seen ? DnsAnswer::Status::kRecords : DnsAnswer::Status::kEmpty;
    return answer;
  }

 private:
  struct Entry {
    std::string type;
    std::string value;
  };
  static std::string TypeName(RecordType type) {
    switch (type) {
      case RecordType::kTxt:
        return "TXT";
      case RecordType::kA:
        return "A";
      case RecordType::kAaaa:
        return "AAAA";
      case RecordType::kMx:
        return "MX";
      case RecordType::kPtr:
        return "PTR";
    }
    return "";
  }
  std::map<std::string, std::vector<Entry>> zone_;
};

// Runs check_host() to its end, answering every question from `resolver`.
SpfResult Evaluate(const SpfRequest& request, const ZoneResolver& resolver, int& rounds) {
  DnsAnswers answers;
  for (rounds = 1; rounds <= kMaxRounds; ++rounds) {
    SpfStep step = CheckHost(request, answers);
    if (step.result) return *step.result;
    EXPECT_FALSE(step.questions.empty());
    for (const DnsQuestion& question : step.questions) {
      EXPECT_FALSE(answers.contains(question)) << question.name;
      answers[question] = resolver.Resolve(question);
    }
  }
  ADD_FAILURE() << "no result after " << kMaxRounds << " rounds";
  return {};
}

TEST(SpfRfc7208SuiteTest, EveryCasePasses) {
  const std::string path = SuitePath();
  ASSERT_FALSE(path.empty()) << "GREYLIGHT_SPF_SUITE_PATH not set at build time";
  ASSERT_TRUE(std::filesystem::exists(path))
      << "the RFC 7208 test suite is missing: expected " << path
      << " (../shared/data/spf/rfc7208-tests.yml beside the source tree; or set "
         "GREYLIGHT_SPF_SUITE)";
  std::vector<YAML::Node> scenarios = YAML::LoadAllFromFile(path);
  int total = 0;
  int passed = 0;
  for (const YAML::Node& scenario : scenarios) {
    const std::string description = scenario["description"].as<std::string>();
    ZoneResolver resolver(scenario["zonedata"]);
    for (const auto& test : scenario["tests"]) {
      const std::string name = test.first.as<std::string>();
      const YAML::Node& spec = test.second;
      std::vector<std::string> expected;
      if (spec["result"].IsSequence()) {
        for (const YAML::Node& result : spec["result"])
          expected.push_back(result.as<std::string>());
      } else {
        expected.push_back(spec["result"].as<std::string>());
      }
      auto ip = policy::IpAddress::Parse(spec["host"].as<std::string>());
      ASSERT_TRUE(ip.has_value()) << name;
      const SpfRequest request = SpfRequest::ForMailFrom(*ip, spec["mailfrom"].as<std::string>(),
                                                         spec["helo"].as<std::string>());
      int rounds = 0;
      const SpfResult result = Evaluate(request, resolver, rounds);
      const std::string got(SpfCodeName(result.code));
      ++total;
      const bool ok = std::find(expected.begin(), expected.end(), got) != expected.end();
      if (ok) ++passed;
      EXPECT_TRUE(ok) << description << " / " << name << ": got " << got << " (" << result.problem
                      << result.mechanism << "), expected " << spec["result"];
    }
  }
  std::cout << "RFC 7208 test suite: " << passed << " of " << total << " cases pass\n";
  EXPECT_GT(total, 0);
}

}  // namespace
}  // namespace greylight::spf
