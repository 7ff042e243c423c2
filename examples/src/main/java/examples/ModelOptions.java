package examples;

import java.nio.file.Path;

import picocli.CommandLine.Option;

/** The options that say which network to run, with which weights, where. */
final class ModelOptions {
    @Option(names = "--weights", paramLabel = "FILE",
            description = "Weights for --model: safetensors or a PyTorch .pth state dict (torchvision's names).")
    Path weights;

    @Option(names = "--width", paramLabel = "W", defaultValue = "1.0",
            description = "Width multiplier of mobilenet_v1/mobilenet_v2 (default: ${DEFAULT-VALUE}).")
    double width;

    @Option(names = "--classes", paramLabel = "N", defaultValue = "1000",
            description = "Classes of the network's head (default: ${DEFAULT-VALUE}, ImageNet).")
    int classes;

    @Option(names = "--backend", paramLabel = "ID",
            description = "jvm or tornado (default: the squall.backend property, else the best available).")
    String backend;

    @Option(names = "--threads", paramLabel = "T",
            description = "Worker threads of the jvm backend (default: all cores).")
    Integer threads;

    @Option(names = "--layout", paramLabel = "L",
            description = "Layout of the jvm backend: auto (blocked NCHWc islands where they pay, the default) "
                    + "or nchw.")
    String layout;
}
