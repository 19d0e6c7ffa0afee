// DeviceParam (loglinear/cuda/core/param.hpp).
#include <loglinear/cuda/core/param.hpp>

#include "../cuda_check.cuh"

#include <stdexcept>
#include <string>
#include <vector>

namespace loglinear::cuda {
namespace {
void check_same(const DeviceParam& d, const Param<float>& h) {
  if (d.name != h.name || d.value.rows() != h.value.rows() || d.value.cols() != h.value.cols())
    throw std::invalid_argument("param " + h.name + ": expected the device twin " + d.name + " [" +
                                std::to_string(d.value.rows()) + ", " + std::to_string(d.value.cols()) +
                                "] to have the host's name and shape [" + std::to_string(h.value.rows()) + ", " +
                                std::to_string(h.value.cols()) + "]");
}
}  // namespace

DeviceParam::DeviceParam(const Param<float>& host, cudaStream_t stream)
    : name(host.name), weight_decay(host.weight_decay) {
  value.upload(host.value, stream);
  grad.resize(value.rows(), value.cols());
  grad.set_zero(stream);
  LOGLINEAR_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void DeviceParam::upload(const Param<float>& host, cudaStream_t stream) {
  check_same(*this, host);
  value.upload(host.value, stream);
  LOGLINEAR_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void DeviceParam::download(Param<float>& host, cudaStream_t stream) const {
  check_same(*this, host);
  host.value = value.download(stream);
  host.grad = grad.download(stream);
}

void check_same_params(const std::string& who, const std::vector<Param<float>*>& cpu,
                       const std::vector<DeviceParam*>& gpu) {
  if (cpu.size() != gpu.size())
    throw std::logic_error(who + ": " + std::to_string(gpu.size()) + " parameters, the CPU twin has " +
                           std::to_string(cpu.size()));
  for (size_t i = 0; i < cpu.size(); ++i)
    if (cpu[i]->name != gpu[i]->name)
      throw std::logic_error(who + ": parameter " + std::to_string(i) + " is " + gpu[i]->name +
                             ", the CPU twin's is " + cpu[i]->name);
}

}  // namespace loglinear::cuda
