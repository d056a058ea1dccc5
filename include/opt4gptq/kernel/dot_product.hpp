#pragma once
/// @file
/// The 8-term dot product of interleaved activations with one dequantized word, in the MathPolicy's arithmetic.
/// Not API.

#include "../platform.hpp"
#include "../policy/traits.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace detail {

/// Sum of the 8 products of interleaved activations `a` and dequantized values `w`: the policy's own `dot8` when it
/// has one, otherwise an fp16 `fma2` chain (the exllama kernel's precision) added up in fp32.
template <class Math>
OPT4GPTQ_DEVICE float dot8(const half2 (&a)[4], const half2 (&w)[4]) {
  if constexpr (traits::has_dot8<Math>::value) {
    return Math::dot8(a, w);
  } else {
    half2 p = Math::fma2(a[0], w[0], platform::bit_cast<half2>(0u));
    p = Math::fma2(a[1], w[1], p);
    p = Math::fma2(a[2], w[2], p);
    p = Math::fma2(a[3], w[3], p);
    return __low2float(p) + __high2float(p);
  }
}

}  // namespace detail
OPT4GPTQ_NAMESPACE_END
