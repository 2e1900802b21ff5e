// The real Kernel: libnl-route for links and addresses (requests on one
// socket, RTNLGRP_LINK / RTNLGRP_IPV4_IFADDR events on another), one raw
// IPPROTO_VRRP socket per instance, one AF_PACKET socket for GARP. Every
// descriptor is read through the control io_context, never blocking it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>

#include "vrrp/kernel.h"

namespace vrrp {

std::unique_ptr<Kernel> make_netlink_kernel(boost::asio::io_context& io);

}  // namespace vrrp
