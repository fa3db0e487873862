// TypeDoc plugin for `npm run docs` (typedoc.json), two rules of presentation:
// - The reference names only public types. A public class that extends or implements one of the
//   package's internals (Handle, the reactor's *Entry interfaces) lists only its public supertypes,
//   and its members do not say "Inherited from Handle.id" or "Implementation of PortEntry.x": TypeDoc
//   would print those names as unlinked text and warn that they are not exported.
// - A frozen object of functions or constants (`export const sockets = Object.freeze({ ... })`, typed
//   `Readonly<{ ... }>`) is documented as the object it freezes: TypeDoc would show the type's text
//   and leave out each member's doc comment.
import { Converter, ReferenceType, ReflectionKind, ReflectionType } from 'typedoc'

/** `Readonly<{ ... }>` → the `{ ... }` it wraps, whose members carry their doc comments. */
function frozenObject(type) {
  const wrapped = type instanceof ReferenceType && type.name === 'Readonly' && type.package === 'typescript' ? type.typeArguments?.[0] : undefined
  return wrapped instanceof ReflectionType ? wrapped : undefined
}

export function load(app) {
  // At the start of resolution: TypeDoc builds each class's hierarchy from these lists afterwards.
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    const project = context.project
    const ownPackage = project.packageName ?? project.name
    // A reference into this package that resolves to no documented reflection.
    const internal = (type) =>
      type instanceof ReferenceType && type.reflection === undefined && (type.package === undefined || type.package === ownPackage)
    for (const reflection of project.getReflectionsByKind(ReflectionKind.ClassOrInterface)) {
      for (const key of ['extendedTypes', 'implementedTypes']) {
        const kept = reflection[key]?.filter((type) => !internal(type))
        reflection[key] = kept?.length ? kept : undefined
      }
    }
    for (const variable of project.getReflectionsByKind(ReflectionKind.Variable)) {
      variable.type = frozenObject(variable.type) ?? variable.type
    }
    for (const reflection of Object.values(project.reflections)) {
      for (const key of ['inheritedFrom', 'implementationOf', 'overwrites']) {
        if (internal(reflection[key])) reflection[key] = undefined
      }
    }
  })
}
