# A small stand-in for BOSH's template rendering, for tests: renders every template of a job
# (and its monit file) with Ruby's ERB and the helpers BOSH gives templates: p, if_p, link,
# if_link and spec. Properties follow BOSH's rules: the manifest's value, else the job spec's
# default, else an error for p without a default; if_p yields only when every property has one.
#
#   ruby bosh-render.rb JOB_DIR CONTEXT_JSON OUT_DIR
#
# CONTEXT_JSON: {"properties": {...nested...}, "links": {"name": {"properties": {...}}}, "spec": {...}}
require 'erb'
require 'json'
require 'ostruct'
require 'yaml'
require 'fileutils'

class UnknownProperty < StandardError; end

def dig_property(tree, name)
  name.split('.').reduce(tree) do |node, key|
    return [false, nil] unless node.is_a?(Hash) && node.key?(key)
    node[key]
  end.then { |value| [true, value] }
end

class LinkStandIn
  def initialize(name, properties)
    @name = name
    @properties = properties
  end

  def p(name, *default)
    found, value = dig_property(@properties, name)
    return value if found
    return default.first unless default.empty?
    raise UnknownProperty, "link #{@name}: no property #{name}"
  end

  def if_p(*names)
    values = names.map { |name| dig_property(@properties, name) }
    yield(*values.map(&:last)) if values.all? { |found, value| found && !value.nil? }
  end
end

class TemplateContext
  attr_reader :spec

  def initialize(job_spec, context)
    @defaults = (job_spec['properties'] || {}).transform_values { |entry| (entry || {})['default'] }
    @properties = context['properties'] || {}
    @links = context['links'] || {}
    spec = context['spec'] || {}
    networks = (spec['networks'] || {}).transform_values { |network| OpenStruct.new(network) }
    @spec = OpenStruct.new(spec.merge('networks' => OpenStruct.new(networks), 'properties' => @properties))
  end

  def lookup(name)
    found, value = dig_property(@properties, name)
    return [true, value] if found
    raise UnknownProperty, "#{name} is not a property of the job's spec" unless @defaults.key?(name)
    [!@defaults[name].nil?, @defaults[name]]
  end

  def p(name, *default)
    found, value = lookup(name)
    return value if found
    return default.first unless default.empty?
    raise UnknownProperty, "Can't find property '#{name}'"
  end

  def if_p(*names)
    values = names.map { |name| lookup(name) }
    yield(*values.map(&:last)) if values.all? { |found, _| found }
  end

  def link(name)
    raise UnknownProperty, "Can't find link '#{name}'" unless @links.key?(name)
    LinkStandIn.new(name, @links[name]['properties'] || {})
  end

  def if_link(name)
    yield link(name) if @links.key?(name)
  end

  def render(text)
    ERB.new(text, trim_mode: '-').result(binding)
  end
end

job_dir, context_file, out_dir = ARGV
job_spec = YAML.safe_load(File.read(File.join(job_dir, 'spec')))
context = TemplateContext.new(job_spec, JSON.parse(File.read(context_file)))
templates = job_spec['templates'].map { |source, target| [File.join('templates', source), target] }
templates << ['monit', 'monit']
templates.each do |source, target|
  rendered = context.render(File.read(File.join(job_dir, source)))
  path = File.join(out_dir, target)
  FileUtils.mkdir_p(File.dirname(path))
  File.write(path, rendered)
  # What BOSH would fail on later, fail on now: YAML and JSON that do not parse.
  YAML.safe_load(rendered) if target.end_with?('.yml')
  JSON.parse(rendered) if target.end_with?('.json')
end
