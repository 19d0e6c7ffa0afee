// The smallest train::ModelConfig of either model that still has every part (2 layers, 2 heads,
// a lambda MLP, several chunks): shared by the tests of train/ (model, evaluate, resume).
#pragma once

#include <loglinear/train/model.hpp>

#include <string>

namespace loglinear::test {

/// Tiny ModelConfig of `model` ("task" or "mamba2"): d_model 8, 2 layers, 2 heads, lambda hidden
/// 4, chunk 4; the LM with d_state 3, expand 2, SwiGLU width 8. Decay mamba2 (valid for both).
inline train::ModelConfig tiny_model_config(const std::string& model) {
  train::ModelConfig c;
  c.model = model;
  c.decay = "mamba2";
  c.d_model = 8;
  c.layers = 2;
  c.heads = 2;
  c.mlp_hidden = 4;
  c.chunk = 4;
  c.d_state = 3;
  c.expand = 2;
  c.ffn_hidden = 8;
  return c;
}

}  // namespace loglinear::test
