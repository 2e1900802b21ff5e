// Parsed haproxy.cfg + keepalived.conf -> vipproxy configuration (cfg::Config)
// -> YAML text (cfg::to_yaml, migration keys), with one note per item that
// was not translated or that changes meaning on the way. Pure: no I/O.
// from_haproxy.cpp and from_keepalived.cpp hold the two translations,
// convert.cpp what they share.
#pragma once

#include <string>
#include <vector>

#include "cfg/config.h"
#include "importer/common.h"
#include "importer/haproxy.h"
#include "importer/keepalived.h"

namespace importer {

struct Options {
  std::string node;  // written as `node:` when not empty
  // Names used in notes ("haproxy.cfg:12: ..."): the paths the user gave.
  std::string haproxy_file = "haproxy.cfg";
  std::string keepalived_file = "keepalived.conf";
};

struct Result {
  cfg::Config config;       // what the YAML says (before the loader's defaults)
  std::string yaml;         // the vipproxy configuration
  std::vector<Note> notes;  // sorted by file and line, no duplicates
  std::string load_error;   // empty when `yaml` passes cfg::load_string
  // Items whose translation would be unsafe to run (e.g. keepalived's AH
  // authentication): the YAML is still written, but the import fails.
  std::vector<Note> refused;
};

// Either input may be null (only one file given).
Result convert(const haproxy::Config* hap, const keepalived::Config* ka, const Options& opts);


}  // namespace importer
