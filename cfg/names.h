// One spelling per value of every enum of the configuration: the words the
// YAML file uses, which are also the words of logs, /status, `vipproxy
// status`, the reload diff and the importer's output. The loader parses
// with parse(), everything else writes with to_string(), so a value is never
// spelled two ways.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "cfg/config.h"

namespace cfg::names {

template <class E>
struct Spelling {
  std::string_view name;
  E value;
};

// The spellings of E, canonical first for each value; a later entry for the
// same value is an alias that parse() accepts and to_string() never writes.
template <class E> std::span<const Spelling<E>> spellings();
template <> std::span<const Spelling<CheckType>> spellings();
template <> std::span<const Spelling<ExpectRole>> spellings();
template <> std::span<const Spelling<Balance>> spellings();
template <> std::span<const Spelling<VrrpState>> spellings();
template <> std::span<const Spelling<AuthType>> spellings();
template <> std::span<const Spelling<ChecksumForm>> spellings();
template <> std::span<const Spelling<DataPath>> spellings();

template <class E>
std::string_view to_string(E value) {
  for (const auto& s : spellings<E>())
    if (s.value == value) return s.name;
  return "?";  // not reached: every value has a spelling (cfg_names_test)
}

// Exact, lower-case match (the loader lower-cases what the file says).
template <class E>
std::optional<E> parse(std::string_view text) {
  for (const auto& s : spellings<E>())
    if (s.name == text) return s.value;
  return std::nullopt;
}

// "http, tcp": the canonical spellings, for "expected one of ..." messages.
template <class E>
std::string expected() {
  std::string out;
  for (const auto& s : spellings<E>()) {
    if (to_string(s.value) != s.name) continue;  // an alias
    if (!out.empty()) out += ", ";
    out += s.name;
  }
  return out;
}

}  // namespace cfg::names
