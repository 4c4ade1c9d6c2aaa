#include "spf/spf_check.h"

#include <algorithm>
#include <cstdio>

#include "spf/spf_macro.h"
#include "spf/spf_record.h"
#include "util/ascii.h"

namespace greylight::spf {
namespace {

std::string Lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

// A name from a record or an answer, as a question takes it.
std::string QuestionName(std::string_view name) {
  if (name.ends_with('.')) name.remove_suffix(1);
  return Lowercase(name);
}

// RFC 7208 section 4.3: the initial <domain> must be a multi-label domain name. Only
// letters, digits, '-' and '_' are accepted, so a domain literal or a stray character
// gives "none" instead of a query.
bool ValidInitialDomain(std::string_view domain) {
  return QueryableName(domain) && domain.find('.') != std::string_view::npos &&
         std::all_of(domain.begin(), domain.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  c == '.';
         });
}

bool IsMappedIpv4(const policy::IpAddress& ip) {
  return ip.is_v6 &&
         std::all_of(ip.bytes.begin(), ip.bytes.begin() + 10, [](uint8_t b) { return b == 0; }) &&
         ip.bytes[10] == 0xFF && ip.bytes[11] == 0xFF;
}

policy::IpAddress Normalized(const policy::IpAddress& ip) {
  if (!IsMappedIpv4(ip)) return ip;
  policy::IpAddress v4;
  std::copy_n(ip.bytes.begin() + 12, 4, v4.bytes.begin());
  return v4;
}

// The "i" macro: a dotted quad, or the 32 nibbles of an IPv6 address, dot-separated.
std::string IpMacroText(const policy::IpAddress& ip) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  if (!ip.is_v6) {
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "%u.%u.%u.%u", ip.bytes[0], ip.bytes[1], ip.bytes[2],
                  ip.bytes[3]);
    return buffer;
  }
  for (uint8_t byte : ip.bytes) {
    if (!text.empty()) text.push_back('.');
    text.push_back(kHex[byte >> 4]);
    text.push_back('.');
    text.push_back(kHex[byte & 0xF]);
  }
  return text;
}

// The name of the PTR question for `ip`: the "i" macro's parts reversed.
std::string ReverseName(const policy::IpAddress& ip) {
  const std::string forward = IpMacroText(ip);
  std::string reversed;
  size_t end = forward.size();
  while (end != std::string::npos) {
    const size_t dot = end == 0 ? std::string::npos : forward.rfind('.', end - 1);
    const size_t start = dot == std::string::npos ? 0 : dot + 1;
    reversed.append(forward, start, end - start).push_back('.');
    end = dot;
  }
  reversed.append(ip.is_v6 ? "ip6.arpa" : "in-addr.arpa");
  return reversed;
}

// True if `name` is `domain` or one of its subdomains.
bool WithinDomain(std::string_view name, std::string_view domain) {
  return name == domain || (name.size() > domain.size() && name.ends_with(domain) &&
                            name[name.size() - domain.size() - 1] == '.');
}

SpfCode Qualify(char qualifier) {
  switch (qualifier) {
    case '-':
      return SpfCode::kFail;
    case '~':
      return SpfCode::kSoftFail;
    case '?':
      return SpfCode::kNeutral;
    default:
      return SpfCode::kPass;
  }
}

// How control leaves an evaluation early. Both are thrown and caught inside this file
// only: a missing answer or an error result can arise at any depth of includes and
// redirects, and unwinding to CheckHost keeps every mechanism's code straight-line.
struct NeedAnswers {};
struct Abort {
  SpfCode code;
  std::string problem;
};

class Evaluation {
 public:
  Evaluation(const SpfRequest& request, const DnsAnswers& answers)
      : request_(request), answers_(answers), ip_(Normalized(request.ip)) {
    const size_t at = request.sender.rfind('@');
    local_part_ = at == std::string::npos ? request.sender : request.sender.substr(0, at);
    sender_domain_ = at == std::string::npos ? "" : request.sender.substr(at + 1);
  }

  SpfResult Run() {
    const std::string domain = QuestionName(request_.domain);
    SpfResult result;
    if (!ValidInitialDomain(domain)) {
      result.problem = "'" + request_.domain + "' is not a domain name";
      return result;
    }
    try {
      result = Check(domain);
    } catch (const Abort& abort) {
      result = SpfResult();
      result.code = abort.code;
      result.problem = abort.problem;
    }
    result.domain = domain;
    if (result.code != SpfCode::kPass) result.broad = false;
    return result;
  }

  std::vector<DnsQuestion> TakeQuestions() { return std::move(missing_); }

 private:
  // check_host() for `domain`: an error result is thrown (Abort), any other returned.
  SpfResult Check(const std::string& domain) {
    const DnsAnswer& txt = Ask({domain, RecordType::kTxt});
    if (txt.status == DnsAnswer::Status::kError) {
      throw Abort{SpfCode::kTempError, "DNS error looking up TXT " + domain};
    }
    std::vector<const std::string*> records;
    for (const std::string& text : txt.texts) {
      if (IsSpfRecord(text)) records.push_back(&text);
    }
    if (records.empty()) {
      SpfResult none;
      none.problem = "no SPF record at " + domain;
      return none;
    }
    if (records.size() > 1) throw Abort{SpfCode::kPermError, "several SPF records at " + domain};
    auto record = SpfRecord::Parse(*records.front());
    if (!record.ok()) {
      throw Abort{SpfCode::kPermError, domain + ": " + std::string(record.status().message())};
    }
    for (const Directive& directive : record->directives) {
      SpfResult matched;
      matched.mechanism = directive.text;
      matched.record_domain = domain;
      if (Matches(directive, domain, matched)) {
        matched.code = Qualify(directive.qualifier);
        return matched;
      }
    }
    if (record->redirect) {
      CountTerm();
      const std::string target = ExpandDomain(*record->redirect, Values(domain));
      SpfResult redirected;
      if (QueryableName(target)) redirected = Check(target);
      if (redirected.code == SpfCode::kNone) {
        throw Abort{SpfCode::kPermError, "redirect=" + target + " has no SPF record"};
      }
      return redirected;
    }
    SpfResult neutral;
    neutral.code = SpfCode::kNeutral;
    neutral.record_domain = domain;
    return neutral;
  }

  // True if `directive` matches the client; `out` then tells how (broad, and for an
  // include the mechanism that matched inside it).
  bool Matches(const Directive& directive, const std::string& domain, SpfResult& out) {
    switch (directive.mechanism) {
      case Mechanism::kAll:
        out.broad = true;
        return true;
      case Mechanism::kIp4:
      case Mechanism::kIp6: {
        const bool v6 = directive.mechanism == Mechanism::kIp6;
        if (ip_.is_v6 != v6) return false;
        out.broad = Broad(directive);
        return ip_.Within(directive.network, v6 ? directive.ipv6_prefix : directive.ipv4_prefix);
      }
      case Mechanism::kA:
        return MatchesA(directive, domain, out);
      case Mechanism::kMx:
        return MatchesMx(directive, domain, out);
      case Mechanism::kPtr:
        return MatchesPtr(directive, domain, out);
      case Mechanism::kExists: {
        CountTerm();
        const std::string target = Target(directive, domain);
        if (!QueryableName(target)) return false;
        const DnsAnswer& answer = Ask({target, RecordType::kA});
        if (answer.status == DnsAnswer::Status::kError) DnsError("A", target);
        if (answer.void_lookup()) return CountVoid();
        out.broad = true;
        return true;
      }
      case Mechanism::kInclude: {
        CountTerm();
        const std::string target = Target(directive, domain);
        SpfResult included;
        if (QueryableName(target)) included = Check(target);
        if (included.code == SpfCode::kNone) {
          throw Abort{SpfCode::kPermError, "include:" + target + " has no SPF record"};
        }
        if (included.code != SpfCode::kPass) return false;
        out = std::move(included);
        return true;
      }
    }
    return false;
  }

  bool MatchesA(const Directive& directive, const std::string& domain, SpfResult& out) {
    CountTerm();
    const std::string target = Target(directive, domain);
    if (!QueryableName(target)) return false;
    const DnsAnswer& answer = Ask({target, AddressType()});
    if (answer.status == DnsAnswer::Status::kError) DnsError("address", target);
    if (answer.void_lookup()) return CountVoid();
    out.broad = Broad(directive);
    return Contains(answer, directive);
  }

  bool MatchesMx(const Directive& directive, const std::string& domain, SpfResult& out) {
    CountTerm();
    const std::string target = Target(directive, domain);
    if (!QueryableName(target)) return false;
    const DnsAnswer& answer = Ask({target, RecordType::kMx});
    if (answer.status == DnsAnswer::Status::kError) DnsError("MX", target);
    if (answer.void_lookup()) return CountVoid();
    if (answer.texts.size() > kMaxMxNames) {
      throw Abort{SpfCode::kPermError, "more than 10 MX names at " + target};
    }
    std::vector<DnsQuestion> hosts;
    for (const std::string& exchange : answer.texts) {
      std::string name = QuestionName(exchange);
      if (QueryableName(name)) hosts.push_back({std::move(name), AddressType()});  // not null MX
    }
    AskAll(hosts);
    out.broad = Broad(directive);
    for (const DnsQuestion& host : hosts) {
      const DnsAnswer& addresses = answers_.at(host);
      if (addresses.status == DnsAnswer::Status::kError) DnsError("address", host.name);
      if (Contains(addresses, directive)) return true;
    }
    return false;
  }

  // RFC 7208 section 5.5. Only the names within the target are validated: the others
  // could not match, and the first kMaxPtrNames names are all that count either way.
  bool MatchesPtr(const Directive& directive, const std::string& domain, SpfResult& out) {
    CountTerm();
    const std::string target = Target(directive, domain);
    if (!QueryableName(target)) return false;
    const DnsAnswer& answer = Ask({ReverseName(ip_), RecordType::kPtr});
    if (answer.status == DnsAnswer::Status::kError) return false;  // "fails to match"
    if (answer.void_lookup()) return CountVoid();
    std::vector<DnsQuestion> candidates;
    for (size_t i = 0; i < answer.texts.size() && i < kMaxPtrNames; ++i) {
      std::string name = QuestionName(answer.texts[i]);
      if (QueryableName(name) && WithinDomain(name, target)) {
        candidates.push_back({std::move(name), AddressType()});
      }
    }
    AskAll(candidates);
    out.broad = true;
    return std::any_of(candidates.begin(), candidates.end(), [&](const DnsQuestion& candidate) {
      return HasClient(answers_.at(candidate));  // a DNS error skips the name
    });
  }

  // The "p" macro (RFC 7208 section 7.3): a validated name of the client, preferring
  // `domain` itself, then a subdomain of it; "unknown" if there is none.
  std::string ValidatedName(const std::string& domain) {
    if (!validated_names_) {
      std::vector<std::string> names;
      const DnsAnswer& answer = Ask({ReverseName(ip_), RecordType::kPtr});
      std::vector<DnsQuestion> questions;
      for (size_t i = 0; i < answer.texts.size() && i < kMaxPtrNames; ++i) {
        std::string name = QuestionName(answer.texts[i]);
        if (QueryableName(name)) questions.push_back({std::move(name), AddressType()});
      }
      AskAll(questions);
      for (const DnsQuestion& question : questions) {
        if (HasClient(answers_.at(question))) names.push_back(question.name);
      }
      validated_names_ = std::move(names);
    }
    const std::vector<std::string>& names = *validated_names_;
    if (std::find(names.begin(), names.end(), domain) != names.end()) return domain;
    for (const std::string& name : names) {
      if (WithinDomain(name, domain)) return name;
    }
    return names.empty() ? "unknown" : names.front();
  }

  std::string Target(const Directive& directive, const std::string& domain) {
    if (!directive.domain) return domain;
    return ExpandDomain(*directive.domain, Values(domain, directive.domain->Uses('p')));
  }

  MacroString::Values Values(const std::string& domain, bool with_validated_name = false) {
    MacroString::Values values;
    values.sender = request_.sender;
    values.local_part = local_part_;
    values.sender_domain = sender_domain_;
    values.domain = domain;
    values.ip = IpMacroText(ip_);
    values.ip_version = ip_.is_v6 ? "ip6" : "in-addr";
    values.helo = request_.helo;
    if (with_validated_name) values.validated_name = ValidatedName(domain);
    return values;
  }

  const DnsAnswer& Ask(const DnsQuestion& question) {
    auto it = answers_.find(question);
    if (it != answers_.end()) return it->second;
    missing_.push_back(question);
    throw NeedAnswers{};
  }

  // Names every missing answer at once (each once), so the caller can ask them in parallel.
  void AskAll(const std::vector<DnsQuestion>& questions) {
    for (const DnsQuestion& question : questions) {
      if (!answers_.contains(question) &&
          std::find(missing_.begin(), missing_.end(), question) == missing_.end()) {
        missing_.push_back(question);
      }
    }
    if (!missing_.empty()) throw NeedAnswers{};
  }

  void CountTerm() {
    if (++dns_terms_ > kMaxDnsTerms) {
      throw Abort{SpfCode::kPermError, "more than 10 DNS-querying terms"};
    }
  }

  // Counts a void lookup; returns false (no match) so callers can return it.
  bool CountVoid() {
    if (++void_lookups_ > kMaxVoidLookups) {
      throw Abort{SpfCode::kPermError, "more than 2 void lookups"};
    }
    return false;
  }

  [[noreturn]] static void DnsError(std::string_view type, const std::string& name) {
    throw Abort{SpfCode::kTempError, "DNS error looking up " + std::string(type) + " " + name};
  }

  RecordType AddressType() const { return ip_.is_v6 ? RecordType::kAaaa : RecordType::kA; }

  bool Broad(const Directive& directive) const {
    return ip_.is_v6 ? directive.ipv6_prefix < kNarrowestBroadIpv6Prefix
                     : directive.ipv4_prefix < kNarrowestBroadIpv4Prefix;
  }

  bool Contains(const DnsAnswer& answer, const Directive& directive) const {
    const int prefix = ip_.is_v6 ? directive.ipv6_prefix : directive.ipv4_prefix;
    return std::any_of(
        answer.addresses.begin(), answer.addresses.end(),
        [&](const policy::IpAddress& address) { return ip_.Within(address, prefix); });
  }

  bool HasClient(const DnsAnswer& answer) const {
    return std::find(answer.addresses.begin(), answer.addresses.end(), ip_) !=
           answer.addresses.end();
  }

  const SpfRequest& request_;
  const DnsAnswers& answers_;
  const policy::IpAddress ip_;
  std::string local_part_;
  std::string sender_domain_;
  int dns_terms_ = 0;
  int void_lookups_ = 0;
  std::optional<std::vector<std::string>> validated_names_;
  std::vector<DnsQuestion> missing_;
};

}  // namespace

SpfRequest SpfRequest::ForMailFrom(const policy::IpAddress& ip, std::string_view mail_from,
                                   std::string_view helo) {
  SpfRequest request;
  request.ip = ip;
  request.helo = std::string(helo);
  if (mail_from.empty()) {
    request.domain = std::string(helo);
    request.sender = "postmaster@" + request.domain;
    return request;
  }
  const size_t at = mail_from.rfind('@');
  std::string_view local = at == std::string_view::npos ? mail_from : mail_from.substr(0, at);
  request.domain = at == std::string_view::npos ? "" : std::string(mail_from.substr(at + 1));
  request.sender = std::string(local.empty() ? "postmaster" : local) + "@" + request.domain;
  return request;
}

SpfStep CheckHost(const SpfRequest& request, const DnsAnswers& answers) {
  Evaluation evaluation(request, answers);
  SpfStep step;
  try {
    step.result = evaluation.Run();
  } catch (const NeedAnswers&) {
    step.questions = evaluation.TakeQuestions();
  }
  return step;
}

}  // namespace greylight::spf
