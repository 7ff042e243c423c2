package examples;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import squall.api.Backends;
import squall.api.CompiledModel;
import squall.api.Graph;
import squall.api.Model;
import squall.api.Operators;
import squall.api.Shape;
import squall.api.Tensor;
import squall.networks.Networks;
import squall.networks.Npy;
import squall.networks.RandomWeights;

class InferTest {
    @TempDir
    Path dir;

    @Test
    void roundTripsNpyAndMatchesRunningTheModelDirectly() {
        SplittableRandom random = new SplittableRandom(3);
        float[] data = new float[2 * 3 * 80 * 72];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) random.nextGaussian();
        }
        Tensor input = new Tensor(Shape.of(2, 3, 80, 72), data);
        Path in = dir.resolve("in.npy");
        Path out = dir.resolve("out.npy");
        Npy.write(in, input);

        Run run = Run.of(Infer::run, "--model", "mobilenet_v3_small", "--backend", "jvm", "--input", in.toString(),
                "--output", out.toString());
        assertEquals(0, run.exitCode(), run.toString());

        Graph graph = Networks.build("mobilenet_v3_small");
        Model model = Model.bind(graph, RandomWeights.generate(graph, LoadedModel.RANDOM_SEED), "random");
        Tensor expected;
        try (CompiledModel compiled = Backends.select("jvm").compile(model, Operators.discover(), Map.of())) {
            expected = compiled.run(input);
        }
        Tensor actual = Npy.read(out);
        assertEquals(Shape.of(2, 1000), actual.shape());
        assertArrayEquals(expected.data(), actual.data(), 1e-6f);
    }
}
