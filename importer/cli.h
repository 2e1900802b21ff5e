// `vipproxy import`: the I/O shell around the pure parsers and emitter.
#pragma once

#include <iosfwd>

namespace importer {

// args[0] is "import". Writes the YAML to `out`, notes and errors to `err`.
// Returns 0 on success, 1 when an input cannot be read or parsed (or the
// result does not pass the loader), 2 on a usage error.
int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace importer
