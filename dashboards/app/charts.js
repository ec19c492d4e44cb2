// charts.js - ECharts (Apache-2.0, dashboards/vendor/echarts, copied from npm at build
// time) loaded once as a plain script from our own origin. Charts render to canvas with
// rich-text tooltips (no HTML tooltip: the CSP allows no inline style), no animation,
// and follow the dark theme.

let loading = null;

export function echarts() {
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      if (window.echarts) {
        resolve(window.echarts);
        return;
      }
      const s = document.createElement('script');
      s.src = '/vendor/echarts/echarts.min.js';
      s.onload = () => resolve(window.echarts);
      s.onerror = () => reject(new Error('echarts'));
      document.head.append(s);
    });
  }
  return loading;
}

export function dark() {
  return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
}

// A chart in el with the common settings; returns the instance.
export async function chart(el, option, label) {
  const ec = await echarts();
  el.setAttribute('role', 'img');
  el.setAttribute('aria-label', label);
  const c = ec.init(el, dark() ? 'dark' : null, { renderer: 'canvas' });
  c.setOption({
    animation: false,
    backgroundColor: 'transparent',
    tooltip: { trigger: 'axis', renderMode: 'richText' },
    textStyle: { fontFamily: '"Noto Sans CJK SC", "Noto Sans", sans-serif' },
    ...option,
  });
  return c;
}
