import DefaultTheme from "vitepress/theme";
import BenchChart from "./BenchChart.vue";
import BenchResults from "./BenchResults.vue";

// The default theme, plus the components the benchmarks page uses.
export default {
  extends: DefaultTheme,
  enhanceApp({ app }: { app: import("vue").App }) {
    app.component("BenchChart", BenchChart);
    app.component("BenchResults", BenchResults);
  },
};
