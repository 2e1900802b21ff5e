#include "cfg/names.h"

#include <array>

namespace cfg::names {

namespace {

constexpr std::array<Spelling<CheckType>, 2> kCheckType{{{"http", CheckType::http}, {"tcp", CheckType::tcp}}};
// "auto": the role follows from the path (health/patroni.h).
constexpr std::array<Spelling<ExpectRole>, 3> kExpectRole{
    {{"auto", ExpectRole::automatic}, {"primary", ExpectRole::primary}, {"any", ExpectRole::any}}};
constexpr std::array<Spelling<Balance>, 3> kBalance{
    {{"first", Balance::first}, {"roundrobin", Balance::roundrobin}, {"leastconn", Balance::leastconn}}};
constexpr std::array<Spelling<VrrpState>, 2> kVrrpState{{{"master", VrrpState::master}, {"backup", VrrpState::backup}}};
constexpr std::array<Spelling<AuthType>, 2> kAuthType{{{"pass", AuthType::pass}, {"none", AuthType::none}}};
constexpr std::array<Spelling<ChecksumForm>, 2> kChecksumForm{
    {{"keepalived", ChecksumForm::keepalived}, {"rfc9568", ChecksumForm::rfc9568}}};
constexpr std::array<Spelling<DataPath>, 4> kDataPath{{{"auto", DataPath::automatic},
                                                      {"kernel", DataPath::kernel},
                                                      {"splice", DataPath::splice},
                                                      {"copy", DataPath::copy}}};

}  // namespace

template <> std::span<const Spelling<CheckType>> spellings() { return kCheckType; }
template <> std::span<const Spelling<ExpectRole>> spellings() { return kExpectRole; }
template <> std::span<const Spelling<Balance>> spellings() { return kBalance; }
template <> std::span<const Spelling<VrrpState>> spellings() { return kVrrpState; }
template <> std::span<const Spelling<AuthType>> spellings() { return kAuthType; }
template <> std::span<const Spelling<ChecksumForm>> spellings() { return kChecksumForm; }
template <> std::span<const Spelling<DataPath>> spellings() { return kDataPath; }

}  // namespace cfg::names
