"""The compiler: function source -> plan (IR) -> code object, and the IR's interpreter."""
