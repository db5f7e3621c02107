"""Memory analysis: memoryless approximations and the implicit loss of optimizers with memory
(the memory paper, ../shared/papers/memory_implicitly_modifies_the_loss.md)."""
