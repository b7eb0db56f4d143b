// Inpainting a whole picture: checks the inputs, runs the pipeline at a multiple of 8,
// and composites the result through the soft mask so unmasked pixels stay bit-identical.
#pragma once
#include "engine/image.h"
#include "engine/pipeline.h"

namespace inpaint {

struct InpaintResult {
  Image image;              // same size and channels as the input
  bool nothing_to_do = false;  // the mask was empty: image is the input
  StageTimes times;
};

// Throws Error for mismatched sizes, a too small or too large image; Cancelled on cancel.
InpaintResult inpaint_image(const ModelSource& model, const Image& image, const Mask& mask,
                            const GenerationOptions& options, Progress& progress);

// Throws a clear Error when a picture of this size cannot be inpainted (checked before
// anything is decoded or allocated).
void check_image_size(int64_t width, int64_t height);

// Process memory high-water mark (VmHWM), in bytes.
size_t peak_rss_bytes();

}  // namespace inpaint
