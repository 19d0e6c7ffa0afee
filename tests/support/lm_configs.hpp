// The smallest log-linear Mamba-2 LM that still has every part (2 heads, 4 levels, a lambda MLP,
// chunk 2 so the chunked form has several chunks): shared by the LM, layer and optimiser tests.
#pragma once

#include <loglinear/nn/lm.hpp>

namespace loglinear::test {

/// Tiny LmConfig: d_model 4, expand 2, 2 heads, d_state 3, 4 levels, lambda hidden 5, chunk 2.
inline nn::LmConfig tiny_lm_config(Index vocab, Index layers) {
  nn::LmConfig c;
  c.vocab = vocab;
  c.d_model = 4;
  c.layers = layers;
  c.mlp_hidden = 6;
  c.mixer.expand = 2;
  c.mixer.heads = 2;
  c.mixer.d_state = 3;
  c.mixer.levels = 4;
  c.mixer.lambda_hidden = 5;
  c.mixer.chunk = 2;
  return c;
}

}  // namespace loglinear::test
