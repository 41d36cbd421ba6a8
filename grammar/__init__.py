"""Front end: kernel `.S` text to a parsed program with source locations.

Stages, each in its own module, data flowing one way:
``cpp`` (system C preprocessor, line markers -> origins) -> ``reader``
(the GNU-as layer: statements, driving ``scrubber``, ``symbols``,
``conditionals``, ``macros`` and ``sections``, producing the types of
``statements``) -> ``parser`` (the lark grammar in ``att.lark``: AT&T
instructions and expressions) -> ``program`` (sections, labels, functions,
exception table).  ``ast`` holds the nodes everything downstream consumes;
``source`` holds origins and the error type.
"""
