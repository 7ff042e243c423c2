package squall.backend.tornado;

import java.lang.invoke.CallSite;
import java.lang.invoke.LambdaConversionException;
import java.lang.invoke.LambdaMetafactory;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import squall.api.KernelCall;
import squall.api.SquallException;
import uk.ac.manchester.tornado.api.TaskGraph;

/**
 * Turns a {@link KernelCall} into a TornadoVM task. TaskGraph.task wants a
 * {@code TornadoFunctions.TaskN} (a lambda such as {@code Kernels::conv2d}) and finds the kernel by
 * reading the bytecode of its {@code apply}; a call known only as a {@link Method} gets such a
 * lambda from {@link LambdaMetafactory}, as {@code javac} would have made one.
 */
final class KernelTasks {
    static final String ADVICE = "Run the model on the jvm backend, or fix the kernel (TornadoVM takes primitive "
            + "arrays and scalars: no objects, allocation or exceptions); -Dtornado.debug=True shows TornadoVM's "
            + "full reason";
    /** TornadoFunctions has Task1..Task20. */
    static final int MAX_PARAMETERS = 20;
    /** One lambda factory per kernel, shared by every task (and plan) that calls it. */
    private static final Map<Method, MethodHandle> FACTORIES = new ConcurrentHashMap<>();

    private KernelTasks() {
    }

    /** Adds {@code call} to {@code graph} as task {@code id}; {@code what} names it in errors. */
    static void add(TaskGraph graph, String id, KernelCall call, String what) {
        Method kernel = call.kernel();
        int n = kernel.getParameterCount();
        if (n < 1 || n > MAX_PARAMETERS) {
            throw new SquallException("kernel " + what + " takes " + n + " parameters; a TornadoVM task takes 1 to "
                    + MAX_PARAMETERS + ": pass scalars together in an int[]");
        }
        Object[] taskArgs = new Object[n + 2];
        taskArgs[0] = id;
        taskArgs[1] = function(kernel);
        System.arraycopy(call.args(), 0, taskArgs, 2, n);
        Class<?>[] types = new Class<?>[n + 2];
        Arrays.fill(types, Object.class);
        types[0] = String.class;
        types[1] = taskInterface(n);
        try {
            TaskGraph.class.getMethod("task", types).invoke(graph, taskArgs);
        } catch (InvocationTargetException e) {
            // TornadoVM sketches (parses and inlines) the kernel here: most unsupported code fails now.
            throw new SquallException("TornadoVM cannot compile kernel " + what + ": " + e.getCause() + ". " + ADVICE,
                    e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new SquallException("cannot make a TornadoVM task of kernel " + what + ": " + e, e);
        }
    }

    /**
     * Bytes the task takes in TornadoVM's task-graph bytecode (TornadoTaskGraph.addInner): context
     * 9, argument list 5, 5 per argument, launch 1.
     */
    static int graphBytes(KernelCall call) {
        return 15 + 5 * call.args().length;
    }

    /**
     * At most the nodes the task adds to TornadoVM's graph (TornadoGraphBuilder): the task, and per
     * array an object node, its allocation or copy, its release and a read after write; per scalar a
     * constant.
     */
    static int graphNodes(KernelCall call) {
        int nodes = 1;
        for (Object arg : call.args()) {
            nodes += arg != null && arg.getClass().isArray() ? 4 : 1;
        }
        return nodes;
    }

    /** A {@code TornadoFunctions.TaskN} whose {@code apply} calls {@code kernel}. */
    static Object function(Method kernel) {
        MethodHandle factory = FACTORIES.computeIfAbsent(kernel, KernelTasks::lambdaFactory);
        try {
            return factory.invoke();
        } catch (Throwable e) {
            throw new SquallException("cannot make a TornadoVM task function for kernel " + kernel + ": " + e, e);
        }
    }

    private static MethodHandle lambdaFactory(Method kernel) {
        int n = kernel.getParameterCount();
        Class<?> taskInterface = taskInterface(n);
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            MethodHandle target = lookup.unreflect(kernel);
            // apply(Object, ...) erased; instantiated with the kernel's types, scalars boxed, so the
            // generated apply casts, unboxes and makes one invokestatic of the kernel.
            MethodType erased = MethodType.genericMethodType(n).changeReturnType(void.class);
            MethodType instantiated = target.type().wrap().changeReturnType(void.class);
            CallSite site = LambdaMetafactory.metafactory(lookup, "apply", MethodType.methodType(taskInterface),
                    erased, target, instantiated);
            return site.getTarget();
        } catch (ReflectiveOperationException | LambdaConversionException e) {
            throw new SquallException("cannot make a TornadoVM task function for kernel " + kernel + ": " + e, e);
        }
    }

    private static Class<?> taskInterface(int parameters) {
        try {
            return Class.forName("uk.ac.manchester.tornado.api.common.TornadoFunctions$Task" + parameters);
        } catch (ClassNotFoundException e) {
            throw new SquallException("this TornadoVM has no TornadoFunctions.Task" + parameters, e);
        }
    }
}
