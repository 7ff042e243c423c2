package squall.api;

/**
 * The one exception family of Squall. A message names the thing at fault (file, tensor, node, op),
 * what was expected and what was found, and what to do about it.
 */
public class SquallException extends RuntimeException {
    public SquallException(String message) {
        super(message);
    }

    public SquallException(String message, Throwable cause) {
        super(message, cause);
    }

    /** A model, weights or image file that cannot be read as what it claims to be. */
    public static class BadFile extends SquallException {
        public BadFile(String message) {
            super(message);
        }

        public BadFile(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** Shapes or attributes that do not fit an operator or a graph. */
    public static class BadShape extends SquallException {
        public BadShape(String message) {
            super(message);
        }
    }

    /** An op id that no registered provider offers. */
    public static class UnknownOperator extends SquallException {
        public UnknownOperator(String message) {
            super(message);
        }
    }
}
