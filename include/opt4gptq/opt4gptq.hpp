#pragma once
/// @file
/// Umbrella header: everything an engine needs to run GPTQ 4-bit layers.

#include "format.hpp"
#include "host/act_order.hpp"
#include "host/launch.hpp"
#include "kernel/dequant_gemm.hpp"
#include "platform.hpp"
#include "policy/load.hpp"
#include "policy/math.hpp"
#include "policy/reduce.hpp"
#include "policy/traits.hpp"
#include "presets.hpp"
#include "problem.hpp"
#include "status.hpp"
#include "tile.hpp"
#include "version.hpp"
