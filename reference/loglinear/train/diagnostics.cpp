// Diagnostics of decay and lambda (diagnostics.hpp): quantiles by sorting, text and JSON output
// (nlohmann::json, kept out of the public header so consumers need not find it).
#include <loglinear/train/diagnostics.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace loglinear::train {
namespace {
// numpy's "linear" method: position p (n - 1), interpolated between its two neighbours.
double at(const std::vector<double>& sorted, double p) {
  const double pos = p * double(sorted.size() - 1);
  const std::size_t lo = std::size_t(std::floor(pos)), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
}
nlohmann::json json_of(const Quantiles& q) {
  return {{"q05", q.q05}, {"q25", q.q25}, {"median", q.median}, {"q75", q.q75},
          {"q95", q.q95}, {"min", q.min}, {"max", q.max},       {"count", q.count}};
}
}  // namespace

Quantiles quantiles(std::vector<double> xs) {
  Quantiles q;
  if (xs.empty()) return q;
  std::sort(xs.begin(), xs.end());
  q.count = Index(xs.size());
  q.min = xs.front();
  q.max = xs.back();
  q.q05 = at(xs, 0.05);
  q.q25 = at(xs, 0.25);
  q.median = at(xs, 0.5);
  q.q75 = at(xs, 0.75);
  q.q95 = at(xs, 0.95);
  return q;
}

ValueStats value_stats(std::vector<double> xs) {
  ValueStats s;
  if (xs.empty()) return s;
  std::sort(xs.begin(), xs.end());
  double sum = 0, sq = 0;
  for (double x : xs) sum += x;
  s.mean = sum / double(xs.size());
  for (double x : xs) sq += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(sq / double(xs.size()));
  s.min = xs.front();
  s.max = xs.back();
  s.median = xs[xs.size() / 2];
  return s;
}

template <class Scalar>
std::vector<ValueStats> level_stats(const RowMatrix<Scalar>& lam, Index L) {
  if (L < 1 || lam.cols() % L != 0)
    throw std::invalid_argument("lam: expected [N, H*L] with L = " + std::to_string(L) + ", got " +
                                std::to_string(lam.cols()) + " columns");
  const Index H = lam.cols() / L;
  std::vector<ValueStats> out;
  for (Index l = 0; l < L; ++l) {
    std::vector<double> xs;
    for (Index n = 0; n < lam.rows(); ++n)
      for (Index h = 0; h < H; ++h) xs.push_back(double(lam(n, h * L + l)));
    out.push_back(value_stats(std::move(xs)));
  }
  return out;
}

template <class Scalar>
ValueStats decay_stats(const RowMatrix<Scalar>& g) {
  std::vector<double> xs(static_cast<std::size_t>(g.size()));
  for (Index i = 0; i < g.size(); ++i) xs[std::size_t(i)] = std::exp(double(g.data()[i]));
  return value_stats(std::move(xs));
}

std::string Diagnostics::to_text() const {
  std::string out;
  char line[256];
  for (std::size_t l = 0; l < layers.size(); ++l)
    for (std::size_t h = 0; h < layers[l].size(); ++h) {
      const auto& d = layers[l][h];
      std::snprintf(line, sizeof line, "layer %zu head %zu  exp(g): q05 %.4f q25 %.4f median %.4f q75 %.4f q95 %.4f\n",
                    l, h, d.decay.q05, d.decay.q25, d.decay.median, d.decay.q75, d.decay.q95);
      out += line;
      out += "    lambda median per level:";
      for (const auto& q : d.lambda) {
        std::snprintf(line, sizeof line, " %.4f", q.median);
        out += line;
      }
      out += "\n";
    }
  return out;
}

std::string Diagnostics::to_json(int indent) const {
  nlohmann::json layers_json = nlohmann::json::array();
  for (const auto& layer : layers) {
    nlohmann::json heads = nlohmann::json::array();
    for (const auto& d : layer) {
      nlohmann::json lam = nlohmann::json::array();
      for (const auto& q : d.lambda) lam.push_back(json_of(q));
      heads.push_back({{"decay", json_of(d.decay)}, {"lambda", lam}});
    }
    layers_json.push_back({{"heads", heads}});
  }
  return nlohmann::json{{"layers", layers_json}}.dump(indent);
}

template <class Scalar>
Diagnostics collect_diagnostics(const std::vector<RowMatrix<Scalar>>& g, const std::vector<RowMatrix<Scalar>>& lam,
                                Index L) {
  if (g.size() != lam.size())
    throw std::invalid_argument("lam: expected one matrix per layer (" + std::to_string(g.size()) + "), got " +
                                std::to_string(lam.size()));
  Diagnostics out;
  for (std::size_t layer = 0; layer < g.size(); ++layer) {
    const Index N = g[layer].rows(), H = g[layer].cols();
    if (N < 1) throw std::invalid_argument("g: expected at least one token in layer " + std::to_string(layer));
    if (lam[layer].rows() != N || lam[layer].cols() != H * L)
      throw std::invalid_argument("lam: expected shape [N, H*L] = [" + std::to_string(N) + "," + std::to_string(H * L) +
                                  "] in layer " + std::to_string(layer) + ", got [" +
                                  std::to_string(lam[layer].rows()) + "," + std::to_string(lam[layer].cols()) + "]");
    std::vector<HeadDiagnostics> heads(static_cast<std::size_t>(H));
    for (Index h = 0; h < H; ++h) {
      std::vector<double> xs(static_cast<std::size_t>(N));
      for (Index n = 0; n < N; ++n) xs[std::size_t(n)] = std::exp(double(g[layer](n, h)));
      heads[std::size_t(h)].decay = quantiles(xs);
      for (Index l = 0; l < L; ++l) {
        for (Index n = 0; n < N; ++n) xs[std::size_t(n)] = double(lam[layer](n, h * L + l));
        heads[std::size_t(h)].lambda.push_back(quantiles(xs));
      }
    }
    out.layers.push_back(std::move(heads));
  }
  return out;
}

template std::vector<ValueStats> level_stats<float>(const RowMatrix<float>&, Index);
template std::vector<ValueStats> level_stats<double>(const RowMatrix<double>&, Index);
template ValueStats decay_stats<float>(const RowMatrix<float>&);
template ValueStats decay_stats<double>(const RowMatrix<double>&);
template Diagnostics collect_diagnostics<float>(const std::vector<RowMatrix<float>>&,
                                                const std::vector<RowMatrix<float>>&, Index);
template Diagnostics collect_diagnostics<double>(const std::vector<RowMatrix<double>>&,
                                                 const std::vector<RowMatrix<double>>&, Index);

}  // namespace loglinear::train
