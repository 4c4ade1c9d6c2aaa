#include "engine/decision_log.h"

#include <fmt/format.h>

namespace greylight::engine {
namespace {

using policy::Reason;

// The number the decision line carries: postgrey logs "delay=N" for a first delivery that
// got the X-Greylist header; JSON also gives the seconds missing of a greylisted request.
struct LineNumber {
  std::string_view name;  // empty: none
  long long value = 0;
};

LineNumber NumberOf(const Decision& d) {
  if (d.reason == Reason::kPassFirst && d.header_added) return {"delay", d.delayed.count()};
  if (policy::VerdictOf(d.reason) == policy::Verdict::kGreylist) {
    return {"missing", d.missing.count()};
  }
  return {};
}

void AppendField(std::string& line, std::string_view name, std::string_view value) {
  if (value.empty() || value == "0") return;  // Perl-false values are left out, as postgrey
  line.append(", ").append(name).push_back('=');
  log::AppendEscaped(line, value);
}

void AppendJsonField(std::string& json, std::string_view name, std::string_view value) {
  json += ",\"";
  json += name;
  json += "\":";
  log::AppendJsonString(json, value);
}

bool IsSpfError(const spf::SpfResult& spf) {
  return spf.code == spf::SpfCode::kTempError || spf.code == spf::SpfCode::kPermError;
}

}  // namespace

std::string SpfSummary(const spf::SpfResult& spf) {
  std::string text(spf::SpfCodeName(spf.code));
  if (!spf.domain.empty()) text.append(" ").append(spf.domain);
  if (spf.broad) text.append(" (broad)");
  if (IsSpfError(spf) && !spf.problem.empty()) text.append(" (").append(spf.problem).append(")");
  return text;
}

std::string PostgreyDecisionLine(const Decision& d) {
  const Request& request = *d.request;
  std::string line;
  line.reserve(256);
  if (request.queue_id && !request.queue_id->empty()) {
    log::AppendEscaped(line, *request.queue_id);
    line.append(": ");
  }
  line.append("action=").append(policy::ActionWord(d.reason));
  line.append(", reason=").append(policy::ReasonWord(d.reason));
  if (d.reason == Reason::kEarlyRetry) line += fmt::format(" ({}s missing)", d.missing.count());
  LineNumber number = NumberOf(d);
  if (number.name == "delay") line += fmt::format(", delay={}", number.value);
  if (!d.group.empty()) {
    line.append(", group=");
    log::AppendEscaped(line, d.group);
  }
  if (d.spf) {
    line.append(", spf=");
    log::AppendEscaped(line, SpfSummary(*d.spf));
  }
  AppendField(line, "client_name", request.client_name);
  AppendField(line, "client_address", request.client_address);
  AppendField(line, "sender", request.sender);
  AppendField(line, "recipient", request.recipient);
  return line;
}

std::string JsonDecisionLine(const Decision& d, std::chrono::microseconds took) {
  const Request& request = *d.request;
  std::string json = "{\"action\":";
  log::AppendJsonString(json, policy::ActionWord(d.reason));
  json += ",\"reason\":";
  log::AppendJsonString(json, policy::ReasonWord(d.reason));
  if (request.queue_id) AppendJsonField(json, "queue_id", *request.queue_id);
  AppendJsonField(json, "client_name", request.client_name);
  AppendJsonField(json, "client_address", request.client_address);
  AppendJsonField(json, "sender", request.sender);
  AppendJsonField(json, "recipient", request.recipient);
  if (request.instance) AppendJsonField(json, "instance", *request.instance);
  LineNumber number = NumberOf(d);
  if (!number.name.empty()) json += fmt::format(",\"{}\":{}", number.name, number.value);
  if (!d.key.empty()) AppendJsonField(json, "key", d.key);
  if (!d.group.empty()) AppendJsonField(json, "group", d.group);
  if (d.spf) {
    AppendJsonField(json, "spf", spf::SpfCodeName(d.spf->code));
    if (!d.spf->domain.empty()) AppendJsonField(json, "spf_domain", d.spf->domain);
    if (d.spf->broad) json += ",\"spf_broad\":true";
    if (IsSpfError(*d.spf) && !d.spf->problem.empty()) {
      AppendJsonField(json, "spf_problem", d.spf->problem);
    }
  }
  json += fmt::format(",\"decision_us\":{}}}", took.count());
  return json;
}

void RenderDecisionLog(const Decision& d, LogFormat format, std::chrono::microseconds took,
                       std::vector<LogLine>& out) {
  const bool warnings = log::Enabled(log::Level::kWarning);
  const bool notices = log::Enabled(log::Level::kNotice);
  if (!d.request) {
    if (!warnings) return;
    switch (d.reason) {
      case Reason::kBadTestTime:
        out.push_back({log::Level::kWarning, fmt::format("can't parse policy_test_time: {}",
                                                         log::Escaped(d.unreadable_detail))});
        break;
      case Reason::kBadClientAddress:
        out.push_back(
            {log::Level::kWarning, fmt::format("can't parse client_address from postfix: {}",
                                               log::Escaped(d.unreadable_detail))});
        break;
      default:
        out.push_back(
            {log::Level::kWarning, fmt::format("attribute missing: {}", d.unreadable_detail)});
        break;
    }
    return;
  }
  const Request& request = *d.request;
  if (warnings) {
    for (const std::string& failure : d.list_failures) {
      // A list that cannot be asked counts as not listing the client: DNS trouble never
      // delays mail beyond normal greylisting.
      out.push_back({log::Level::kWarning,
                     fmt::format("DNS list lookup for {} failed, treated as not listed: {}",
                                 request.client.ToPostgreyString(), failure),
                     /*rate_limited=*/true});
    }
  }
  if (d.trap_hit && notices) {
    out.push_back(
        {log::Level::kNotice,
         fmt::format("greytrap hit: {}[{}] sent to {} ({}: {})", log::Escaped(request.client_name),
                     request.client.ToPostgreyString(), log::Escaped(request.recipient),
                     d.trap_hit->source, log::Escaped(d.trap_hit->entry))});
  }
  if (d.store_failed()) {
    if (warnings) {
      out.push_back({log::Level::kWarning,
                     fmt::format("store error, answering {}: {}", d.action, d.store_error),
                     /*rate_limited=*/true});
    }
    return;
  }
  if (warnings && d.first_corrected) {
    out.push_back({log::Level::kWarning, "correcting date for first seen in the future!"});
  }
  if (warnings && d.client_whitelisted) {
    std::string_view name = request.client_name;
    std::string address = request.client.ToPostgreyString();
    out.push_back({log::Level::kWarning,
                   name.empty() || name == "0"
                       ? fmt::format("whitelisted: {}", address)
                       : fmt::format("whitelisted: {}[{}]", log::Escaped(name), address)});
  }
  if (notices) {
    out.push_back({log::Level::kNotice, format == LogFormat::kJson ? JsonDecisionLine(d, took)
                                                                   : PostgreyDecisionLine(d)});
  }
}

}  // namespace greylight::engine
