/**
 * ESLint (flat config), after Effect's own (Effect-TS/effect, v3 branch, eslint.config.mjs):
 * eslint:recommended + typescript-eslint's recommended, formatting by dprint through
 * `@effect/dprint` with Effect's settings, and deep imports of the Effect packages.
 *
 * Effect's config also uses eslint-plugin-import, eslint-plugin-simple-import-sort,
 * eslint-plugin-sort-destructure-keys and eslint-plugin-codegen; they are not dependencies
 * here, so their rules are left out.
 *
 * `npm run lint` checks, `npm run lint:fix` applies the fixes (the dprint format among them).
 */
import * as effectEslint from "@effect/eslint-plugin"
import { builtinRules } from "eslint/use-at-your-own-risk"
import tseslint from "typescript-eslint"

/**
 * `eslint:recommended`: the core rules marked recommended, as `@eslint/js`'s
 * `configs.recommended` lists them (`@eslint/js` is not a dependency of this project).
 */
const eslintRecommended = {
  name: "eslint/recommended",
  rules: Object.fromEntries(
    [...builtinRules].filter(([, rule]) => rule.meta?.docs?.recommended).map(([name]) => [name, "error"])
  )
}

/**
 * The packages whose barrel (`import { Effect } from "effect"`) is replaced by the module
 * (`import * as Effect from "effect/Effect"`). The rule flags value specifiers only:
 * `import type { … } from "effect"` and `import * as … from "effect"` pass.
 */
const barrelPackages = [
  "effect",
  "@effect/platform",
  "@effect/platform-node",
  "@effect/cli",
  "@effect/opentelemetry",
  "@effect/sql",
  "@effect/sql-pg",
  "@effect/sql-sqlite-node"
]

export default [
  {
    ignores: [
      "node_modules/",
      "npm/",
      "dist/",
      "runinfo*/",
      ".tmp/",
      "bench/results/",
      "bench/.data/"
    ]
  },
  eslintRecommended,
  ...tseslint.configs.recommended,
  ...effectEslint.configs.dprint,
  {
    files: ["**/*.ts", "**/*.mjs"],
    languageOptions: {
      parser: tseslint.parser,
      ecmaVersion: 2022,
      sourceType: "module"
    },
    rules: {
      "no-fallthrough": "off",
      "no-irregular-whitespace": "off",
      "object-shorthand": "error",
      "prefer-destructuring": "off",
      "sort-imports": "off",
      "no-restricted-syntax": [
        "error",
        {
          selector: "CallExpression[callee.property.name='push'] > SpreadElement.arguments",
          message: "Do not use spread arguments in Array.push"
        }
      ],
      "no-unused-vars": "off",
      "require-yield": "off",
      "prefer-rest-params": "off",
      "prefer-spread": "off",

      "@typescript-eslint/array-type": ["warn", { default: "generic", readonly: "generic" }],
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-empty-object-type": "off",
      "@typescript-eslint/no-unsafe-function-type": "off",
      "@typescript-eslint/no-wrapper-object-types": "off",
      "@typescript-eslint/consistent-type-imports": "warn",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/ban-ts-comment": "off",
      "@typescript-eslint/explicit-function-return-type": "off",
      "@typescript-eslint/explicit-module-boundary-types": "off",
      "@typescript-eslint/no-array-constructor": "off",
      "@typescript-eslint/no-use-before-define": "off",
      "@typescript-eslint/no-namespace": "off",

      "@effect/dprint": [
        "error",
        {
          config: {
            indentWidth: 2,
            lineWidth: 120,
            semiColons: "asi",
            quoteStyle: "alwaysDouble",
            trailingCommas: "never",
            operatorPosition: "maintain",
            "arrowFunction.useParentheses": "force"
          }
        }
      ]
    }
  },
  {
    // The library, the `dfk` command (shipped in the npm package), the benchmarks, the build
    // scripts and the tests import the Effect packages module by module. examples/ are not
    // checked: they are written as a user writes them (examples/quickstart.ts is the README's
    // first snippet, verbatim), with the barrel, like the README and the JSDoc examples.
    files: ["mod.ts", "src/**/*.ts", "cli/**/*.ts", "bench/**/*.ts", "scripts/**/*.ts", "test/**/*.ts"],
    rules: {
      "@effect/no-import-from-barrel-package": ["error", { packageNames: barrelPackages }]
    }
  },
  {
    // The README's first snippet is this file verbatim (test/Readme.test.ts): its layout
    // (the aligned comments, the trailing comma before the commented-out `version`) is the
    // README's, so dprint leaves it alone. The other rules apply.
    files: ["examples/quickstart.ts"],
    rules: {
      "@effect/dprint": "off"
    }
  },
  {
    // The library writes nothing to the console: it logs through Effect.
    files: ["mod.ts", "src/**/*.ts"],
    rules: {
      "no-console": "error"
    }
  }
]
