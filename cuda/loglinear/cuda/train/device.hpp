// The "cuda" device of the training loop (reference/loglinear/train/device.hpp): a train::Model
// whose forward, backward, clipping and AdamW all run on the GPU twins (cuda/nn/task_model.hpp,
// cuda/train/clip.hpp, cuda/train/adamw.hpp), with the host Params of a CPU model of the same
// configuration as its checkpoint mirror, so checkpoints move freely between the devices.
/// \file
/// \brief The "cuda" device of the training loop: models and optimiser on the GPU
/// \ingroup floor_cuda
#pragma once

#include <loglinear/train/device.hpp>

namespace loglinear::cuda::train {

/// The cuda entry of train::Device: builds GPU models (the task model and the Mamba-2 LM, chunked
/// form, chunk <= 64) and the GPU optimiser; describes the GPU; reports the peak of device memory
/// this process's buffers held (DeviceMemory::peak(): parameters, moments, activations, workspace;
/// the CUDA context and cuBLAS's own workspace are not counted).
loglinear::train::Device cuda_device();

/// Registers cuda_device() under "cuda" (what loglinear-train does at start in a CUDA build).
void register_cuda_device();

}  // namespace loglinear::cuda::train
